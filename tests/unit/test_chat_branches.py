"""Branches in the Chat tab over a real SessionStore: edit any question, regenerate any answer,
‹n/m› arrows, switching and deleting versions, and the KV cache found again after switching back."""

from __future__ import annotations

import re
from types import SimpleNamespace

import gradio as gr
import pytest
from fakes import FakeEngine

from assist.sessions import LOCAL_OWNER, SessionStore
from webui.adapters import display_with_origins
from webui.chat_branches import BranchHandlers, footers, parse_action
from webui.chat_sessions import ChatSessions
from webui.chat_tab import ChatHandlers

SAMPLING = ("", 0.0, 0.9, 50, 8, 1.0, -1)  # system prompt, greedy, …, max 8 new tokens


def request(session: str = "tab1"):
    return SimpleNamespace(session_hash=session, username=None, headers={"accept-language": "en-US"})


def last(generator):
    *_, final = generator
    return final


@pytest.fixture
def store(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    yield store
    store.close()


class Replies(FakeEngine):
    """Answers "answer 1", "answer 2", … in turn, so every version can be told apart."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def stream_chat(self, messages, params=None, session_id=None, cancel=None):
        self.count += 1
        self.reply = f"answer {self.count}"
        return super().stream_chat(messages, params, session_id, cancel)


def setup(store, tmp_path, engine=None):
    sessions = ChatSessions(store, tmp_path / "exports")
    chat = ChatHandlers(engine or Replies(), sessions=sessions)
    return chat, BranchHandlers(chat), sessions


def three_turns(chat) -> list[dict]:
    history = []
    for question in ("q1", "q2", "q3"):
        _, history, _ = last(chat.respond(question, *SAMPLING, history=history, request=request()))
    return history


def contents(history):
    return [m["content"] for m in history]


def edit(index: int, value: str, previous: str) -> gr.EditData:
    return gr.EditData(None, {"index": index, "value": value, "previous_value": previous})


def act(branches, verb: str, message_id: str, history):
    return last(branches.act(f"{verb}:{message_id}", *SAMPLING, history, request=request()))


def test_editing_the_first_question_branches_and_the_arrows_switch_back(store, tmp_path):
    chat, branches, sessions = setup(store, tmp_path)
    history = three_turns(chat)
    original = contents(history)
    shown, history = last(branches.edit(edit(0, "q1 again", "q1"), *SAMPLING, history, request=request()))
    assert contents(history) == ["q1 again", "answer 4"]
    assert "<span>2/2</span>" in shown[0]["content"] and "‹" in shown[0]["content"]
    first_id = history[0]["id"]
    shown, history = act(branches, "prev", first_id, history)
    assert contents(history) == original  # ‹1/2›: the original answers, all of them
    assert "<span>1/2</span>" in shown[0]["content"]
    shown, history = act(branches, "next", history[0]["id"], history)
    assert contents(history) == ["q1 again", "answer 4"]
    saved = store.get(sessions.current(request()), LOCAL_OWNER)
    assert len(saved.tree) == 8 and contents(saved.messages) == contents(history)


def test_regenerating_an_earlier_answer_twice_and_walking_its_versions(store, tmp_path):
    chat, branches, _ = setup(store, tmp_path)
    history = three_turns(chat)  # answers 1-3
    second = history[3]["id"]
    _, history = act(branches, "regen", second, history)  # answer 4 replaces the rest of the branch
    _, history = act(branches, "regen", history[3]["id"], history)  # answer 5
    assert contents(history) == ["q1", "answer 1", "q2", "answer 5"]
    seen = []
    for _ in range(3):  # › from ‹3/3› wraps to ‹1/3›
        shown, history = act(branches, "next", history[3]["id"], history)
        seen.append((re.search(r"<span>(\d/\d)</span>", shown[3]["content"]).group(1), contents(history)[3:]))
    assert seen == [("1/3", ["answer 2", "q3", "answer 3"]), ("2/3", ["answer 4"]), ("3/3", ["answer 5"])]
    assert history[3]["id"] != second


def test_deleting_a_version_shows_its_neighbour(store, tmp_path):
    chat, branches, sessions = setup(store, tmp_path)
    history = three_turns(chat)
    _, history = act(branches, "regen", history[5]["id"], history)
    assert sessions.positions(request())[history[5]["id"]] == (2, 2)
    shown, history = act(branches, "delete", history[5]["id"], history)
    assert contents(history)[-1] == "answer 3" and sessions.positions(request()) == {}
    assert "<span>" not in shown[-1]["content"] and "×" not in shown[-1]["content"]  # one version: no arrows


def test_arrows_and_regenerate_links_in_the_display():
    history = [{"id": "u1", "role": "user", "content": "q"}, {"id": "a1", "role": "assistant", "content": "x"},
               {"id": "u2", "role": "user", "content": "r"}, {"id": "a2", "role": "assistant", "content": "y"}]
    marks = footers(history, {"u1": (1, 2), "a2": (3, 3)})
    assert set(marks) == {0, 1, 3}
    assert 'href="#dcu-branch:prev:u1"' in marks[0] and "1/2" in marks[0] and "↻" not in marks[0]
    assert 'href="#dcu-branch:regen:a1"' in marks[1] and "dcu-branch:prev" not in marks[1]
    assert "3/3" in marks[3] and 'href="#dcu-branch:delete:a2"' in marks[3]
    assert set(footers(history, {}, streaming=True)) == {1}  # the answer being written has none yet
    shown, origins = display_with_origins(history, footers=marks)
    assert origins == [0, 1, 2, 3] and shown[1]["content"].startswith("x\n\n<span class=\"dcu-branch\">")
    assert parse_action("prev:u1") == ("prev", "u1")
    assert parse_action("open:u1") is None and parse_action("prev:<b>") is None and parse_action(None) is None


def test_unknown_or_stale_actions_change_nothing(store, tmp_path):
    chat, branches, _ = setup(store, tmp_path)
    history = three_turns(chat)
    for action in ("prev:nope", "bogus", ""):
        _, after = last(branches.act(action, *SAMPLING, history, request=request()))
        assert after == history
    _, after = last(branches.edit(edit(1, "an answer", "answer 1"), *SAMPLING, history, request=request()))
    assert after == history  # answers are not edited, questions are


def test_switching_back_to_a_branch_reuses_its_kv_cache(store, tmp_path, tiny_engine):
    chat, branches, _ = setup(store, tmp_path, engine=tiny_engine)
    history = []
    for question in ("hello model", "what is the story", "tell me a story"):
        _, history, _ = last(chat.respond(question, *SAMPLING, history=history, request=request()))
    branch_a = history
    _, history = last(branches.edit(edit(0, "the red dragon", "hello model"), *SAMPLING, history, request=request()))
    _, history = act(branches, "prev", history[0]["id"], history)  # back to branch A
    assert contents(history) == contents(branch_a)
    _, history, _ = last(chat.respond("one more question", *SAMPLING, history=history, request=request()))
    cached, total = (int(re.search(p, history[-1]["stats"]).group(1)) for p in (r"(\d+) cached", r"(\d+)\+\d+ tokens"))
    # Branch A's cache (all three turns) was kept while branch B answered: only the new turn is prefilled.
    assert cached > total * 0.7, history[-1]["stats"]


def test_the_edit_box_text_loses_the_arrows_and_the_escaping():
    from webui.chat_branches import edited_text

    shown = 'a <b> c\n\n<span class="dcu-branch"><a href="#dcu-branch:prev:x">‹</a> <span>1/2</span></span>'
    assert edited_text(shown.replace("<b>", "&lt;b>")) == "a <b> c"
    assert edited_text("plain") == "plain" and edited_text(None) == ""
