"""The Chat tab with a reasoning model: thinking shown as a collapsible thought, the switch."""

from __future__ import annotations

from types import SimpleNamespace

from fakes import ScriptedBackend

from engine.engine import Engine
from webui.adapters import display_history
from webui.chat_tab import ChatHandlers

THINKING = "<think>\nThe user greets me. I greet back.\n</think>\n\nHello! Nice to meet you."


def request(session: str = "s", lang: str = "en-US"):
    return SimpleNamespace(session_hash=session, headers={"accept-language": lang})


def test_thinking_streams_as_a_pending_thought_then_collapses_above_the_answer():
    backend = ScriptedBackend(THINKING, chars_per_token=4)
    updates = list(ChatHandlers(Engine(backend)).respond("hi", history=[], request=request()))
    during = [display for display, _, _ in updates if any(m.get("metadata", {}).get("status") == "pending"
                                                          for m in display)]
    assert during, "the thought is shown while it streams"
    display, history, _ = updates[-1]
    thought, answer = display[1], display[2]
    assert thought["metadata"]["title"] == "Thinking" and thought["metadata"]["status"] == "done"
    assert thought["metadata"]["duration"] >= 0
    assert thought["content"] == "The user greets me. I greet back."
    assert answer["content"].startswith("Hello! Nice to meet you.") and "<think>" not in answer["content"]
    thinking_tokens = backend.count_tokens("The user greets me. I greet back.\n")
    assert f"{thinking_tokens} thinking" in answer["content"]  # the stats line counts thinking apart
    assert history[1]["content"] == THINKING  # stored raw; the engine drops the thinking from later prompts
    follow = list(ChatHandlers(Engine(backend)).respond("again", history=history, request=request()))[-1][1]
    assert backend.calls[-1]["messages"][2] == {"role": "assistant", "content": "Hello! Nice to meet you."}
    assert len(follow) == 4


def test_a_thought_cut_off_by_max_tokens_is_done_and_has_no_answer_bubble():
    backend = ScriptedBackend(THINKING, chars_per_token=4)
    display, history, _ = list(ChatHandlers(Engine(backend)).respond(
        "hi", max_new_tokens=5, history=[], request=request()))[-1]
    assert display[1]["metadata"]["status"] == "done"
    assert display[1]["content"].startswith("The user")
    assert "length" in display[2]["content"]  # only the stats line under it


def test_the_thinking_switch_reaches_the_template_only_when_off():
    backend = ScriptedBackend("Hi.")
    handlers = ChatHandlers(Engine(backend))
    list(handlers.respond("hi", history=[], request=request()))
    list(handlers.respond("hi", history=[], thinking=False, request=request()))
    assert [c["params"].template_kwargs for c in backend.calls] == [{}, {"enable_thinking": False}]


def test_answers_without_thinking_display_as_before_and_titles_follow_the_language():
    plain = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello", "stats": "TTFT 0.1 s"}]
    assert display_history(plain) == [{"role": "user", "content": "hi"},
                                      {"role": "assistant", "content": "Hello\n\n<sub>TTFT 0.1 s</sub>"}]
    shown = display_history([{"role": "assistant", "content": THINKING}], "zh")
    assert shown[0]["metadata"]["title"] == "思考过程"


def test_the_thinking_duration_is_saved_and_shown_again_after_a_reload(tmp_path):
    import sqlite3

    from assist.session_import import parse_import
    from assist.sessions import SessionStore
    from webui.chat_sessions import ChatSessions, owner_of

    store = SessionStore(tmp_path / "sessions.sqlite3")
    sessions = ChatSessions(store, tmp_path / "exports")
    handlers = ChatHandlers(Engine(ScriptedBackend(THINKING, chars_per_token=4)), sessions=sessions)
    _, history, _ = list(handlers.respond("hi", history=[], request=request("reload")))[-1]
    took, owner = history[1]["thinking_s"], owner_of(request("reload"))
    saved = store.get(sessions.current(request("reload")), owner).messages
    assert saved[1]["thinking_s"] == took  # what a reload (or another tab) opens
    assert display_history(saved)[1]["metadata"]["duration"] == took
    _, text = store.export(sessions.current(request("reload")), owner, "json")
    assert parse_import(text)["messages"][1]["thinking_s"] == took

    old = tmp_path / "old.sqlite3"  # written before the column existed: opens, and takes durations
    with sqlite3.connect(old) as conn:
        conn.executescript("CREATE TABLE messages (session_id TEXT NOT NULL, position INTEGER NOT NULL, role TEXT "
                           "NOT NULL, content TEXT NOT NULL, stats TEXT NOT NULL DEFAULT '', PRIMARY KEY "
                           "(session_id, position));")
    upgraded = SessionStore(old)
    session = upgraded.create("anonymous", messages=[{"role": "user", "content": "hi"},
                                                     {"role": "assistant", "content": "yo", "thinking_s": 2.5}])
    assert upgraded.get(session.id, "anonymous").messages[1]["thinking_s"] == 2.5
