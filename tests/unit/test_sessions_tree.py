"""Conversations as message trees on real SQLite: branch, switch, delete a branch, migrate a
version-1 database without loss, export/import the whole tree, and search (FTS5, English and Chinese)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from assist.errors import InvalidImport, SessionError
from assist.session_tree import branch_positions
from assist.sessions import LOCAL_OWNER, SessionStore


@pytest.fixture
def store(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    yield store
    store.close()


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def contents(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages]


def three_turns(store) -> tuple[str, list[dict]]:
    session = store.create(LOCAL_OWNER)
    store.save_branch(session.id, LOCAL_OWNER, [user("q1"), bot("a1"), user("q2"), bot("a2"), user("q3"), bot("a3")])
    return session.id, store.get(session.id, LOCAL_OWNER).messages


def test_editing_the_first_message_starts_a_branch_and_keeps_the_old_one(store):
    sid, branch = three_turns(store)
    assert all(m["id"] for m in branch) and branch[0]["parent_id"] is None
    assert [m["parent_id"] for m in branch[1:]] == [m["id"] for m in branch[:-1]]
    store.save_branch(sid, LOCAL_OWNER, [user("q1 edited"), bot("b1")])
    session = store.get(sid, LOCAL_OWNER)
    assert contents(session.messages) == ["q1 edited", "b1"]
    assert len(session.tree) == 8  # nothing was lost
    new_first = session.messages[0]
    assert branch_positions(session.tree, session.messages) == {new_first["id"]: (2, 2)}
    back = store.switch(sid, LOCAL_OWNER, branch[0]["id"])  # ‹1/2›: the original answers again
    assert contents(back.messages) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    again = store.switch(sid, LOCAL_OWNER, new_first["id"])
    assert contents(again.messages) == ["q1 edited", "b1"]


def test_regenerating_an_answer_adds_versions_and_switching_walks_them(store):
    sid, branch = three_turns(store)
    head = branch[:3]  # q1 a1 q2: answer a2 again, twice
    store.save_branch(sid, LOCAL_OWNER, [*head, bot("a2 second")])
    store.save_branch(sid, LOCAL_OWNER, [*head, bot("a2 third")])
    session = store.get(sid, LOCAL_OWNER)
    assert contents(session.messages) == ["q1", "a1", "q2", "a2 third"]
    versions = [n for n in session.tree if n["parent_id"] == branch[2]["id"]]
    assert contents(versions) == ["a2", "a2 second", "a2 third"]
    seen = []
    for number, version in enumerate(versions, start=1):
        shown = store.switch(sid, LOCAL_OWNER, version["id"])
        seen.append(contents(shown.messages))
        assert branch_positions(shown.tree, shown.messages)[version["id"]] == (number, 3)
    # The first version keeps the turn that followed it.
    assert seen == [["q1", "a1", "q2", "a2", "q3", "a3"], ["q1", "a1", "q2", "a2 second"],
                    ["q1", "a1", "q2", "a2 third"]]


def test_switching_back_shows_the_leaf_that_was_shown_last(store):
    sid, branch = three_turns(store)
    store.save_branch(sid, LOCAL_OWNER, [*branch[:5], bot("a3 again")])  # a second version of a3 …
    store.switch(sid, LOCAL_OWNER, branch[5]["id"])  # … then back to the first
    store.save_branch(sid, LOCAL_OWNER, [user("other")])  # a second first question
    back = store.switch(sid, LOCAL_OWNER, branch[0]["id"])
    assert contents(back.messages)[-1] == "a3"  # the version that was on screen, not the newest


def test_saving_the_same_messages_again_writes_nothing_new(store):
    sid, branch = three_turns(store)
    plain = [{"role": m["role"], "content": m["content"]} for m in branch]  # a client without ids
    store.save_branch(sid, LOCAL_OWNER, [*plain, user("q4")])
    session = store.get(sid, LOCAL_OWNER)
    assert len(session.tree) == 7 and contents(session.messages)[-1] == "q4"


def test_a_growing_answer_is_updated_in_place(store):
    sid, branch = three_turns(store)
    answer = {**bot("partial"), "id": "answer-1"}
    store.save_branch(sid, LOCAL_OWNER, [*branch, user("q4"), answer])
    store.save_branch(sid, LOCAL_OWNER, [*branch, user("q4"), {**answer, "content": "partial and done", "stats": "s"}])
    session = store.get(sid, LOCAL_OWNER)
    assert len(session.tree) == 8
    assert session.messages[-1] == {"id": "answer-1", "parent_id": session.messages[-2]["id"], "role": "assistant",
                                    "content": "partial and done", "stats": "s"}


def test_a_message_in_the_wrong_place_is_refused_without_writing(store):
    sid, branch = three_turns(store)
    with pytest.raises(SessionError, match="Message 2 does not follow message 1"):
        store.save_branch(sid, LOCAL_OWNER, [branch[0], branch[3]])
    with pytest.raises(SessionError, match="letters, digits"):
        store.save_branch(sid, LOCAL_OWNER, [{**user("x"), "id": "<script>"}])
    assert len(store.get(sid, LOCAL_OWNER).tree) == 6


def test_deleting_a_branch_removes_it_and_shows_a_neighbour(store):
    sid, branch = three_turns(store)
    store.save_branch(sid, LOCAL_OWNER, [*branch[:3], bot("a2 second")])
    second = store.get(sid, LOCAL_OWNER).messages[-1]
    shown = store.delete_branch(sid, LOCAL_OWNER, second["id"])
    assert contents(shown.messages) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    shown = store.delete_branch(sid, LOCAL_OWNER, branch[2]["id"])  # q2 and everything after it
    assert contents(shown.messages) == ["q1", "a1"] and len(shown.tree) == 2
    assert store.search(LOCAL_OWNER, "a3") == []  # deleted text is gone from the search index too
    shown = store.delete_branch(sid, LOCAL_OWNER, branch[0]["id"])
    assert shown.messages == [] and shown.tree == []
    with pytest.raises(SessionError, match="not part of this conversation"):
        store.switch(sid, LOCAL_OWNER, branch[0]["id"])


def test_tool_calls_stay_with_their_branch(store):
    session = store.create(LOCAL_OWNER)
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "time.now", "arguments": "{}"}]}
    result = {"role": "tool", "tool_call_id": "c1", "name": "time.now", "status": "ok", "content": "12:00"}
    store.save_branch(session.id, LOCAL_OWNER, [user("time?"), call, result, bot("It is noon.")])
    first = store.get(session.id, LOCAL_OWNER).messages
    store.save_branch(session.id, LOCAL_OWNER, [first[0], bot("I cannot tell.")])  # regenerated without tools
    back = store.switch(session.id, LOCAL_OWNER, first[1]["id"])
    assert back.messages[1]["tool_calls"][0]["name"] == "time.now"
    assert back.messages[2]["tool_call_id"] == "c1" and back.messages[3]["content"] == "It is noon."


def test_export_and_import_carry_the_whole_tree(store):
    sid, branch = three_turns(store)
    store.save_branch(sid, LOCAL_OWNER, [*branch[:3], bot("a2 second")])
    store.save_branch(sid, LOCAL_OWNER, [user("q1 edited"), bot("b1")])
    original = store.get(sid, LOCAL_OWNER)
    _, text = store.export(sid, LOCAL_OWNER, "json")
    data = json.loads(text)
    assert data["version"] == 2 and data["active_leaf"] == original.active_leaf
    assert [(m["id"], m["parent_id"]) for m in data["messages"]] == [(n["id"], n["parent_id"]) for n in original.tree]
    _, markdown = store.export(sid, LOCAL_OWNER, "md")
    assert "q1 edited" in markdown and "a2 second" not in markdown  # Markdown: the branch shown
    copy = store.import_json("alice", text)
    assert copy.id != sid and copy.tree == original.tree and copy.active_leaf == original.active_leaf
    walked = store.switch(copy.id, "alice", branch[0]["id"])
    assert contents(walked.messages) == ["q1", "a1", "q2", "a2 second"]  # the version shown last there


@pytest.mark.parametrize("messages, leaf, problem", [
    ([{**user("a"), "parent_id": None}], None, "needs an \"id\""),
    ([{**user("a"), "id": "x", "parent_id": None}, {**bot("b"), "id": "x", "parent_id": "x"}], None, "earlier message"),
    ([{**user("a"), "id": "x", "parent_id": "y"}, {**bot("b"), "id": "y", "parent_id": None}], None,
     "not an earlier message"),
    ([{**user("a"), "id": "x", "parent_id": None}], "nope", "active_leaf"),
])
def test_bad_trees_are_refused(store, messages, leaf, problem):
    with pytest.raises(InvalidImport, match=problem):
        store.import_json(LOCAL_OWNER, {"messages": messages, "active_leaf": leaf})
    assert store.list(LOCAL_OWNER) == []


V1_SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, system_prompt TEXT NOT NULL DEFAULT '');
CREATE INDEX sessions_by_owner ON sessions(owner, updated_at);
CREATE TABLE messages (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, stats TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, position));
"""


def test_a_version_1_database_is_converted_without_loss(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    old = sqlite3.connect(path)  # written as the first release wrote it (before thinking_s and tools)
    old.executescript(V1_SCHEMA)
    old.execute("INSERT INTO sessions VALUES ('s1', 'alice', 'Pumps', 't0', 't1', 'be brief')")
    old.execute("INSERT INTO sessions VALUES ('s2', 'bob', 'Empty', 't0', 't0', '')")
    rows = [("s1", 0, "user", "这台水泵的保修期是多久？", ""), ("s1", 1, "assistant", "两年。", "9 tokens"),
            ("s1", 2, "user", "And the filter?", ""), ("s1", 3, "assistant", "Six months of warranty.", "")]
    old.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?)", rows)
    old.commit()
    old.close()
    store = SessionStore(path)
    session = store.get("s1", "alice")
    assert contents(session.messages) == [r[3] for r in rows]
    assert session.messages[1]["stats"] == "9 tokens" and session.system_prompt == "be brief"
    assert session.active_leaf == session.messages[-1]["id"] and len(session.tree) == 4
    assert store.get("s2", "bob").messages == []
    assert [h.message_id for h in store.search("alice", "保修期")] == [session.messages[0]["id"]]
    store.save_branch("s1", "alice", [*session.messages[:3], bot("A year.")])  # and it branches like any other
    store.close()
    again = SessionStore(path)  # opening a converted file again changes nothing
    assert len(again.get("s1", "alice").tree) == 5
    assert {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")} >= {"messages_fts"}
    again.close()


def test_search_finds_words_inside_chinese_and_english_text(store):
    pump = store.create("alice", messages=[user("这台水泵的保修期是多久？"), bot("保修期为两年，过滤器半年。")])
    bread = store.create("alice", messages=[user("How do I bake bread?"), bot("Knead the dough, then let it rise.")])
    store.create("bob", messages=[user("My pump's 保修期?"), bot("kneading")])
    hits = store.search("alice", "保修期")
    assert {h.session_id for h in hits} == {pump.id} and len(hits) == 2
    assert "保修期" in hits[0].snippet
    [hit] = store.search("alice", "KNEAD")  # a word only in the answer, any case
    assert (hit.session_id, hit.message_id, hit.title) == (bread.id, bread.messages[1]["id"], "How do I bake bread?")
    assert hit.snippet.startswith("Knead the dough")
    assert [h.session_id for h in store.search("alice", "水泵")] == [pump.id]  # two characters: no trigram
    assert [h.message_id for h in store.search("alice", "bread bake")] == [bread.messages[0]["id"]]
    store.rename(bread.id, "alice", "Baking notes")
    assert [(h.session_id, h.message_id) for h in store.search("alice", "notes")] == [(bread.id, None)]  # title only
    assert store.search("alice", "knead 保修期") == []  # every word in one message
    assert store.search("bob", "dough") == [] and store.search("alice", "  ") == []
    assert store.search("alice", 'x" OR "1') == []  # query syntax is taken as text


def test_search_ranks_better_matches_first_and_cuts_snippets(store):
    weak = store.create(LOCAL_OWNER, messages=[user("Tell me a story. " * 20 + "It mentions a lighthouse once.")])
    strong = store.create(LOCAL_OWNER, messages=[user("lighthouse lighthouse lighthouse keeper")])
    hits = store.search(LOCAL_OWNER, "lighthouse")
    assert [h.session_id for h in hits] == [strong.id, weak.id]
    assert hits[1].snippet.startswith("…") and "lighthouse" in hits[1].snippet and len(hits[1].snippet) < 100


def test_search_finds_versions_off_the_branch_shown(store):
    sid, branch = three_turns(store)
    store.save_branch(sid, LOCAL_OWNER, [*branch[:3], bot("an answer about zeppelins")])
    store.switch(sid, LOCAL_OWNER, branch[3]["id"])
    [hit] = store.search(LOCAL_OWNER, "zeppelin")
    shown = store.switch(sid, LOCAL_OWNER, hit.message_id)  # opening the hit shows its branch
    assert shown.messages[-1]["content"] == "an answer about zeppelins"
