"""SessionStore on a real SQLite file: CRUD, search, owners, export/import, reopen, threads."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from assist.errors import InvalidImport, SessionError, SessionNotFound
from assist.session_format import auto_title, file_stem
from assist.sessions import LOCAL_OWNER, SessionStore

TURN = [{"role": "user", "content": "How do I bake bread?"},
        {"role": "assistant", "content": "Flour, water, salt, yeast.", "stats": "12 tokens · 3.0 tok/s"}]


def plain(messages: list[dict]) -> list[dict]:
    """Messages without their tree fields (``id``, ``parent_id``), to compare with what was saved."""
    return [{k: v for k, v in m.items() if k not in ("id", "parent_id")} for m in messages]


@pytest.fixture
def store(tmp_path):
    store = SessionStore(tmp_path / "data" / "sessions.sqlite3")
    yield store
    store.close()


def test_create_save_get_and_list(store):
    session = store.create(LOCAL_OWNER)
    assert session.title == "" and session.messages == []
    store.replace_messages(session.id, LOCAL_OWNER, TURN, system_prompt="be brief")
    loaded = store.get(session.id, LOCAL_OWNER)
    assert plain(loaded.messages) == TURN
    assert loaded.system_prompt == "be brief"
    assert loaded.title == "How do I bake bread?"  # automatic, from the first user message
    [listed] = store.list(LOCAL_OWNER)
    assert listed.id == session.id and listed.message_count == 2
    assert listed.summary()["messages"] == 2


def test_wal_mode_and_file_location(tmp_path):
    path = tmp_path / "nested" / "sessions.sqlite3"
    SessionStore(path).close()
    assert path.is_file()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_list_is_most_recent_first_and_search_matches_titles(store):
    first = store.create(LOCAL_OWNER, title="Bread recipes")
    second = store.create(LOCAL_OWNER, title="Python decorators")
    third = store.create(LOCAL_OWNER, title="面包的做法")
    store.append_messages(first.id, LOCAL_OWNER, TURN)  # touching it makes it the most recent
    assert [s.id for s in store.list(LOCAL_OWNER)] == [first.id, third.id, second.id]
    assert [s.id for s in store.list(LOCAL_OWNER, query="bread")] == [first.id]
    assert [s.id for s in store.list(LOCAL_OWNER, query="面包")] == [third.id]
    assert store.list(LOCAL_OWNER, query="100%") == []  # LIKE wildcards are taken literally


def test_rename_and_empty_rename_restores_the_automatic_title(store):
    session = store.create(LOCAL_OWNER)
    store.replace_messages(session.id, LOCAL_OWNER, TURN)
    assert store.rename(session.id, LOCAL_OWNER, "  Baking  ").title == "Baking"
    store.replace_messages(session.id, LOCAL_OWNER, [*TURN, {"role": "user", "content": "more?"}])
    assert store.get(session.id, LOCAL_OWNER).title == "Baking"  # saving never overwrites a chosen title
    assert store.rename(session.id, LOCAL_OWNER, "").title == "How do I bake bread?"


def test_delete_removes_the_session_and_its_messages(store):
    session = store.create(LOCAL_OWNER, messages=TURN)
    store.delete(session.id, LOCAL_OWNER)
    assert store.list(LOCAL_OWNER) == []
    with pytest.raises(SessionNotFound, match="does not exist"):
        store.get(session.id, LOCAL_OWNER)
    with pytest.raises(SessionNotFound):
        store.delete(session.id, LOCAL_OWNER)


def test_owners_only_see_their_own_sessions(store):
    alice = store.create("alice", title="alice's secret")
    bob = store.create("bob", title="bob's")
    assert [s.id for s in store.list("alice")] == [alice.id]
    assert [s.id for s in store.list("bob", query="secret")] == []
    for action in (lambda: store.get(alice.id, "bob"), lambda: store.rename(alice.id, "bob", "x"),
                   lambda: store.delete(alice.id, "bob"), lambda: store.replace_messages(alice.id, "bob", TURN),
                   lambda: store.export(alice.id, "bob", "md")):
        with pytest.raises(SessionNotFound) as info:
            action()
        assert info.value.http_status == 404
    assert store.get(alice.id, "alice").title == "alice's secret"
    assert store.exists(bob.id, "bob") and not store.exists(bob.id, "alice")


def test_append_keeps_order(store):
    session = store.create(LOCAL_OWNER)
    store.append_messages(session.id, LOCAL_OWNER, TURN[:1])
    store.append_messages(session.id, LOCAL_OWNER, TURN[1:])
    assert plain(store.get(session.id, LOCAL_OWNER).messages) == TURN


def test_bad_messages_are_refused_without_partial_writes(store):
    session = store.create(LOCAL_OWNER, messages=TURN)
    with pytest.raises(SessionError, match="Message 2"):
        store.replace_messages(session.id, LOCAL_OWNER, [TURN[0], {"role": "robot", "content": "x"}])
    assert plain(store.get(session.id, LOCAL_OWNER).messages) == TURN


def test_a_failed_transaction_is_rolled_back(store, monkeypatch):
    session = store.create(LOCAL_OWNER, messages=TURN)

    def broken_touch(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SessionStore, "_touch", staticmethod(broken_touch))  # fails after the rows were written
    with pytest.raises(sqlite3.OperationalError):
        store.replace_messages(session.id, LOCAL_OWNER, [{"role": "user", "content": "new"}])
    assert plain(store.get(session.id, LOCAL_OWNER).messages) == TURN


def test_export_markdown_and_json(store):
    session = store.create(LOCAL_OWNER, title="Bread / baking?", system_prompt="be brief", messages=TURN)
    name, markdown = store.export(session.id, LOCAL_OWNER, "md")
    assert name == "Bread-baking.md"
    assert markdown.startswith("# Bread / baking?")
    assert "## User\n\nHow do I bake bread?" in markdown and "## Assistant" in markdown
    assert "> be brief" in markdown and "<sub>12 tokens" in markdown
    name, text = store.export(session.id, LOCAL_OWNER, "json")
    data = json.loads(text)
    assert name == "Bread-baking.json"
    assert data["format"] == "dcu-chat.session" and plain(data["messages"]) == TURN
    with pytest.raises(SessionError, match="use 'md'"):
        store.export(session.id, LOCAL_OWNER, "pdf")


def test_export_import_round_trip_makes_a_new_session(store):
    session = store.create(LOCAL_OWNER, title="原来的标题", system_prompt="系统", messages=TURN)
    _, text = store.export(session.id, LOCAL_OWNER, "json")
    copy = store.import_json("alice", text.encode("utf-8"))
    assert copy.id != session.id and copy.owner == "alice"
    assert (copy.title, copy.system_prompt, plain(copy.messages)) == ("原来的标题", "系统", TURN)


def test_import_accepts_openai_style_messages(store):
    body = {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
                         {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}]}
    session = store.import_json(LOCAL_OWNER, body)
    assert session.system_prompt == "sys" and session.title == "hi"
    assert [m["content"] for m in session.messages] == ["hi", "hello"]


@pytest.mark.parametrize("raw, message", [
    (b"", "empty"),
    (b"{not json", "not valid JSON (line 1, column 2"),
    (b"\xff\xfe\x00", "not UTF-8"),
    ('"a string"', "JSON object"),
    ({"title": "x"}, "no \"messages\" list"),
    ({"format": "other.app", "messages": []}, "only 'dcu-chat.session'"),
    ({"messages": []}, "no user or assistant messages"),
    ({"messages": [{"role": "user", "content": "ok"}, "text"]}, "Message 2 must be an object"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "Message 1 has role 'bot'"),
    ({"messages": [{"role": "user", "content": 5}]}, "Message 1 has no text"),
    ({"title": 3, "messages": [{"role": "user", "content": "x"}]}, "\"title\" must be text"),
])
def test_bad_imports_explain_the_problem(store, raw, message):
    with pytest.raises(InvalidImport, match=message.replace("(", r"\(")) as info:
        store.import_json(LOCAL_OWNER, raw)
    assert info.value.http_status == 400
    assert store.list(LOCAL_OWNER) == []


def test_sessions_survive_reopening_the_file(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    first = SessionStore(path)
    session = first.create("alice", messages=TURN)
    first.close()
    again = SessionStore(path)
    assert plain(again.get(session.id, "alice").messages) == TURN
    again.close()


def test_a_damaged_file_gives_a_readable_error(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SessionError, match="move it away"):
        SessionStore(path)


def test_concurrent_writes_from_threads(store):
    sessions = [store.create(f"user{i % 3}") for i in range(6)]
    errors: list[BaseException] = []

    def chat(session):
        try:
            history = []
            for turn in range(15):
                history = [*history, {"role": "user", "content": f"q{turn}"},
                           {"role": "assistant", "content": f"a{turn}"}]
                store.replace_messages(session.id, session.owner, history)
                store.list(session.owner)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=chat, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    for session in sessions:
        assert len(store.get(session.id, session.owner).messages) == 30


def test_titles_and_file_names():
    assert auto_title("\n\n  first   line \nsecond") == "first line"
    long = auto_title("word " * 40)
    assert long.endswith("…") and len(long) <= 61
    assert auto_title("字" * 100) == "字" * 60 + "…"
    assert file_stem("../../etc/passwd") == "etc-passwd"
    assert file_stem("") == "conversation" and file_stem("你好 世界") == "你好-世界"
