"""Chat tab handlers with a fake engine: streaming, stop, regenerate, edit, isolation."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import gradio as gr
import pytest
from fakes import FakeEngine, FakeError

from webui.chat_tab import ChatHandlers


def request(session: str, lang: str = "en-US"):
    return SimpleNamespace(session_hash=session, headers={"accept-language": lang})


def last(generator):
    value = None
    for value in generator:  # noqa: B007 (the last one is kept)
        pass
    return value


def test_respond_streams_and_records_the_turn():
    handlers = ChatHandlers(FakeEngine("one two three"))
    updates = list(handlers.respond("hi", history=[], request=request("a")))
    assert len(updates) >= 4  # the user message first, then each delta and the stats
    display, history, box = updates[-1]
    assert box == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["content"] == "one two three"
    assert "TTFT" in history[1]["stats"] and "TTFT" in display[1]["content"]
    assert "TTFT" not in history[1]["content"]


def test_history_sent_to_the_engine_excludes_stats_and_includes_system_prompt():
    engine = FakeEngine("answer")
    handlers = ChatHandlers(engine)
    _, history, _ = last(handlers.respond("first", system_prompt="be brief", history=[], request=request("a")))
    last(handlers.respond("second", system_prompt="be brief", history=history, request=request("a")))
    sent = engine.calls[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"}
    assert [m["content"] for m in sent[1:]] == ["first", "answer", "second"]
    assert all(set(m) == {"role", "content"} for m in sent)


def test_empty_message_is_refused_with_a_message():
    with pytest.raises(gr.Error):
        last(ChatHandlers(FakeEngine()).respond("   ", history=[], request=request("a")))


def test_bad_parameters_become_a_readable_error():
    with pytest.raises(gr.Error, match="temperature"):
        last(ChatHandlers(FakeEngine()).respond("hi", temperature=9, history=[], request=request("a")))


def test_engine_errors_become_gr_error():
    handlers = ChatHandlers(FakeEngine(error=FakeError("The GPU ran out of memory; try again.")))
    with pytest.raises(gr.Error, match="ran out of memory"):
        last(handlers.respond("hi", history=[], request=request("a")))


def test_stop_ends_the_answer_and_keeps_the_partial_text():
    handlers = ChatHandlers(FakeEngine(" ".join(["word"] * 200), delay=0.01))
    results = {}

    def chat():
        results["final"] = last(handlers.respond("go", history=[], request=request("s1")))

    thread = threading.Thread(target=chat)
    thread.start()
    time.sleep(0.2)
    handlers.stop(request("s1"))
    thread.join(timeout=2)
    assert not thread.is_alive()
    _, history, _ = results["final"]
    answer = history[-1]
    assert 0 < len(answer["content"].split()) < 200
    assert "stopped" in answer["stats"]


def test_stop_of_one_session_does_not_touch_another():
    handlers = ChatHandlers(FakeEngine(" ".join(["word"] * 60), delay=0.005))
    results = {}

    def chat(name):
        results[name] = last(handlers.respond("go", history=[], request=request(name)))

    threads = [threading.Thread(target=chat, args=(n,)) for n in ("alice", "bob")]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    handlers.stop(request("alice"))
    for thread in threads:
        thread.join(timeout=5)
    assert "stopped" in results["alice"][1][-1]["stats"]
    assert len(results["bob"][1][-1]["content"].split()) == 60


def test_regenerate_replaces_the_last_answer():
    engine = FakeEngine("again")
    handlers = ChatHandlers(engine)
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "old", "stats": "x"}]
    display, new_history = last(handlers.regenerate("", 0.7, 0.9, 50, 64, 1.1, -1, history, request("a")))
    assert [m["content"] for m in new_history] == ["q", "again"]
    assert history[1]["content"] == "old"  # the input list is not mutated


def test_regenerate_without_an_answer_is_explained():
    with pytest.raises(gr.Error, match="no answer"):
        last(ChatHandlers(FakeEngine()).regenerate("", 0.7, 0.9, 50, 64, 1.1, -1, [], request("a")))


def test_edit_last_puts_the_message_back_and_drops_the_turn():
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
               {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    display, kept, box = ChatHandlers(FakeEngine()).edit_last(history, request("a"))
    assert box == "c" and [m["content"] for m in kept] == ["a", "b"]


def test_messages_are_chinese_for_chinese_browsers():
    with pytest.raises(gr.Error, match="请先输入消息"):
        last(ChatHandlers(FakeEngine()).respond("", history=[], request=request("a", "zh-CN,zh;q=0.9")))
