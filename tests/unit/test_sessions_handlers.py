"""Chat handlers and sidebar handlers over a real SessionStore, with a fake engine."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from fakes import FakeEngine, FakeError

from assist.sessions import LOCAL_OWNER, SessionStore
from webui.chat_sessions import ChatSessions, owner_of
from webui.chat_tab import ChatHandlers
from webui.sessions_panel import full_updates, sidebar_updates


def request(session: str = "tab1", user: str | None = None, lang: str = "en-US"):
    return SimpleNamespace(session_hash=session, username=user, headers={"accept-language": lang})


def last(generator):
    *_, final = generator
    return final


@pytest.fixture
def store(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    yield store
    store.close()


@pytest.fixture
def sessions(store, tmp_path):
    return ChatSessions(store, tmp_path / "exports")


def chat(sessions, reply="Hello there.", **kwargs):
    return ChatHandlers(FakeEngine(reply, **kwargs), sessions=sessions)


def test_the_user_message_is_saved_before_the_answer_starts(sessions, store):
    stream = chat(sessions).respond("What is DCU?", history=[], request=request())
    next(stream)  # the user's message is shown
    next(stream)  # generation has started
    [saved] = store.list(LOCAL_OWNER)
    first = store.get(saved.id, LOCAL_OWNER).messages[0]
    assert (first["role"], first["content"], first["parent_id"]) == ("user", "What is DCU?", None)
    assert saved.title == "What is DCU?"
    stream.close()


def test_each_turn_is_saved_with_stats_and_system_prompt(sessions, store):
    handlers = chat(sessions, "fine thanks")
    _, history, _ = last(handlers.respond("hi", system_prompt="be kind", history=[], request=request()))
    last(handlers.respond("and you?", system_prompt="be kind", history=history, request=request()))
    [saved] = store.list(LOCAL_OWNER)
    session = store.get(saved.id, LOCAL_OWNER)
    assert [m["content"] for m in session.messages] == ["hi", "fine thanks", "and you?", "fine thanks"]
    assert "TTFT" in session.messages[1]["stats"] and session.system_prompt == "be kind"
    assert sessions.current(request()) == saved.id


def test_a_stopped_answer_is_saved_with_its_partial_text(sessions, store):
    handlers = chat(sessions, " ".join(["word"] * 300), delay=0.01)
    thread = threading.Thread(target=lambda: last(handlers.respond("go", history=[], request=request("s1"))))
    thread.start()
    time.sleep(0.3)
    handlers.stop(request("s1"))
    thread.join(timeout=5)
    [saved] = store.list(LOCAL_OWNER)
    answer = store.get(saved.id, LOCAL_OWNER).messages[-1]
    assert 0 < len(answer["content"].split()) < 300 and "stopped" in answer["stats"]


def test_an_abandoned_stream_keeps_what_was_written(sessions, store):
    stream = chat(sessions, "one two three four five").respond("go", history=[], request=request())
    for _ in range(3):  # the question, then "one", " two"
        next(stream)
    stream.close()  # the browser tab went away mid-answer
    [saved] = store.list(LOCAL_OWNER)
    assert store.get(saved.id, LOCAL_OWNER).messages[-1]["content"] == "one two"


def test_an_engine_error_keeps_the_question_but_no_empty_answer(sessions, store):
    handlers = chat(sessions, error=FakeError("The GPU ran out of memory; try again."))
    with pytest.raises(gr.Error):
        last(handlers.respond("hi", history=[], request=request()))
    [saved] = store.list(LOCAL_OWNER)
    assert [(m["role"], m["content"]) for m in store.get(saved.id, LOCAL_OWNER).messages] == [("user", "hi")]


def test_regenerate_and_edit_last_keep_every_version(sessions, store):
    handlers = chat(sessions, "answer")
    _, history, _ = last(handlers.respond("q1", history=[], request=request()))
    _, history, _ = last(handlers.respond("q2", history=history, request=request()))
    _, history = last(handlers.regenerate("", 0.7, 0.9, 50, 64, 1.1, -1, history, request=request()))
    session_id = sessions.current(request())
    saved = store.get(session_id, LOCAL_OWNER)
    assert len(saved.messages) == 4 and len(saved.tree) == 5  # the first answer to q2 is kept
    assert sessions.positions(request()) == {history[3]["id"]: (2, 2)}
    display, kept, box = handlers.edit_last(history, request())
    assert box == "q2" and [m["content"] for m in kept] == ["q1", "answer"]
    assert len(store.get(session_id, LOCAL_OWNER).messages) == 4  # nothing changes until it is sent
    _, history, _ = last(handlers.respond("q2 better", history=kept, request=request()))
    saved = store.get(session_id, LOCAL_OWNER)
    assert [m["content"] for m in saved.messages] == ["q1", "answer", "q2 better", "answer"]
    assert len(saved.tree) == 7 and sessions.positions(request())[history[2]["id"]] == (2, 2)


def test_clear_starts_a_new_conversation_and_keeps_the_old_one(sessions, store):
    handlers = chat(sessions)
    last(handlers.respond("first", history=[], request=request()))
    assert handlers.clear(request()) == ([], [], "")
    last(handlers.respond("second", history=[], request=request()))
    assert [s.title for s in store.list(LOCAL_OWNER)] == ["second", "first"]


def test_browser_tabs_and_users_keep_separate_conversations(sessions, store):
    handlers = chat(sessions)
    last(handlers.respond("from tab 1", history=[], request=request("t1", user="alice")))
    last(handlers.respond("from tab 2", history=[], request=request("t2", user="alice")))
    last(handlers.respond("bob's", history=[], request=request("t3", user="bob")))
    assert {s.title for s in store.list("alice")} == {"from tab 1", "from tab 2"}
    assert [s.title for s in store.list("bob")] == ["bob's"]
    assert owner_of(request(user=None)) == LOCAL_OWNER and owner_of(None) == LOCAL_OWNER


def test_a_conversation_deleted_elsewhere_is_saved_again_as_new(sessions, store):
    handlers = chat(sessions, "ok")
    _, history, _ = last(handlers.respond("q", history=[], request=request()))
    store.delete(sessions.current(request()), LOCAL_OWNER)
    last(handlers.respond("again", history=history, request=request()))
    [saved] = store.list(LOCAL_OWNER)
    assert len(store.get(saved.id, LOCAL_OWNER).messages) == 4


def test_without_a_store_nothing_is_saved():
    _, history, _ = last(ChatHandlers(FakeEngine("x")).respond("hi", history=[], request=request()))
    assert len(history) == 2


# -- sidebar ----------------------------------------------------------------------------------


def test_empty_states_in_english_and_chinese(sessions):
    assert sessions.refresh("", request()).note.startswith("No conversations yet")
    assert "还没有会话" in sessions.refresh("", request(lang="zh-CN")).note
    last(chat(sessions).respond("hello", history=[], request=request()))
    view = sessions.refresh("zzz", request())
    assert view.choices == [] and "zzz" in view.note
    assert sessions.refresh("HELL", request()).note == ""


def test_new_open_and_restore(sessions, store):
    handlers = chat(sessions, "reply")
    last(handlers.respond("first topic", system_prompt="p1", history=[], request=request()))
    first = sessions.current(request())
    view = sessions.new("", request())
    assert view.history == [] and view.current is None and view.exports == (None, None)
    last(handlers.respond("second topic", history=[], request=request()))
    view = sessions.open(first, "", request())
    assert view.current == first and view.system_prompt == "p1"
    assert [m["content"] for m in view.history] == ["first topic", "reply"]
    assert [label for label, _ in view.choices] == ["second topic", "first topic"]
    # A page refresh is a new Gradio session: the id remembered in the browser reopens it.
    restored = sessions.restore(first, "", request("after-refresh"))
    assert restored.current == first and len(restored.history) == 2
    assert sessions.current(request("after-refresh")) == first
    fresh = sessions.restore("no-such-id", "", request("other"))
    assert fresh.current is None and fresh.history is None


def test_open_of_a_deleted_conversation_explains(sessions, store):
    session = store.create(LOCAL_OWNER, messages=[{"role": "user", "content": "x"}])
    store.delete(session.id, LOCAL_OWNER)
    view = sessions.open(session.id, "", request())
    assert "no longer exists" in view.note and view.history == []


def test_rename_delete_and_their_errors(sessions, store, tmp_path):
    with pytest.raises(gr.Error, match="Open or start a conversation first"):
        sessions.rename("x", "", request())
    last(chat(sessions).respond("topic", history=[], request=request()))
    session_id = sessions.current(request())
    view = sessions.rename("My topic", "", request())
    assert view.title == "My topic" and view.choices == [("My topic", session_id)]
    assert (tmp_path / "exports" / session_id).is_dir()
    view = sessions.delete("", request())
    assert view.choices == [] and view.history == [] and view.current is None
    assert store.list(LOCAL_OWNER) == [] and not (tmp_path / "exports" / session_id).exists()


def test_other_users_cannot_open_a_conversation(sessions, store):
    last(chat(sessions).respond("alice's secret", history=[], request=request("a", user="alice")))
    alice_id = sessions.current(request("a", user="alice"))
    view = sessions.open(alice_id, "", request("m", user="mallory"))
    assert view.history == [] and view.choices == [] and "no longer exists" in view.note
    assert sessions.restore(alice_id, "", request("m2", user="mallory")).current is None


def test_export_files_follow_the_title(sessions, store):
    last(chat(sessions, "answer").respond("Bread?", history=[], request=request()))
    md, js = sessions.refresh("", request()).exports
    assert Path(md).name == "Bread.md" and "## Assistant\n\nanswer" in Path(md).read_text(encoding="utf-8")
    assert json.loads(Path(js).read_text(encoding="utf-8"))["messages"][0]["content"] == "Bread?"
    md2, _ = sessions.rename("面包", "", request()).exports
    assert Path(md2).name == "面包.md" and not Path(md).exists()


def test_import_opens_the_imported_conversation(sessions, store, tmp_path):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"title": "Imported", "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}), encoding="utf-8")
    view = sessions.import_file(str(path), "", request())
    assert view.title == "Imported" and [m["content"] for m in view.history] == ["q", "a"]
    assert sessions.current(request()) == view.current
    bad = tmp_path / "bad.json"
    bad.write_text("{oops", encoding="utf-8")
    with pytest.raises(gr.Error, match="not valid JSON"):
        sessions.import_file(str(bad), "", request())


def test_component_updates(sessions):
    last(chat(sessions).respond("topic", history=[], request=request()))
    view = sessions.refresh("", request())
    radio, note, title, md, js, saved_id = sidebar_updates(view)
    assert radio["value"] == view.current and radio["choices"] == view.choices
    assert note["visible"] is False and title == "topic" and md["interactive"] and saved_id == view.current
    filtered = sidebar_updates(sessions.refresh("nothing", request()))
    assert filtered[0]["value"] is None  # the open one is filtered out: nothing selected
    updates = full_updates(sessions.open(view.current, "", request()))
    assert len(updates) == 9 and updates[1][0]["content"] == "topic"
    assert full_updates(sessions.refresh("", request()))[0] is not None  # skipped chat parts


def test_the_search_box_finds_words_of_answers_and_opens_the_conversation_there(sessions, store):
    handlers = chat(sessions, "Knead the dough well.")
    last(handlers.respond("How do I bake bread?", history=[], request=request()))
    bread = sessions.current(request())
    handlers = chat(sessions, "保修期为两年。")
    last(handlers.respond("这台水泵的保修期是多久？", history=[], request=request("tab2")))
    view = sessions.refresh("dough", request())
    saved = store.get(bread, LOCAL_OWNER)
    assert view.choices == [("How do I bake bread? · Knead the dough well.", f"{bread}#{saved.messages[1]['id']}")]
    [(label, value)] = sessions.refresh("保修期", request()).choices  # both messages match: one entry
    assert label.startswith("这台水泵的保修期是多久？ · ")
    opened = sessions.open(value, "保修期", request())
    assert opened.current == value.split("#")[0] and opened.focus == value.split("#")[1]
    shown = handlers.display(opened.history, request(), focus=opened.focus)
    marked = [m["content"] for m in opened.history if m["id"] == opened.focus]
    assert [("dcu-hit" in m["content"]) for m in shown] == [m["id"] == opened.focus for m in opened.history]
    assert marked == ["保修期为两年。"]  # the shorter message ranks first (BM25)
    assert sessions.refresh("bread", request()).choices[0][1].startswith(bread)
    stale = sessions.open(f"{bread}#no-such-message", "", request())  # a deleted message: open the rest
    assert stale.current == bread and stale.focus is None and len(stale.history) == 2
