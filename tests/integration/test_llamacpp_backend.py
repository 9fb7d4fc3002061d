"""The llama.cpp backend on the real embedded default model (what ``--backend auto`` serves on a CPU).

Answers are kept short: these 2-core machines are shared. No timing assertions: speed is in bench/.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.config import SamplingParams
from engine.stats import GenerationStats

GREEDY = SamplingParams(temperature=0, max_new_tokens=16, repetition_penalty=1.0)
STORY = [{"role": "user", "content": "Write a very long story about the sea and the ships on it."}]
QUESTION = "What is the capital of France?"


def run(engine, messages, params=GREEDY, session_id=None, cancel=None) -> tuple[str, list[str], GenerationStats]:
    items = list(engine.stream_chat(messages, params, session_id, cancel))
    deltas = [x for x in items if isinstance(x, str)]
    return "".join(deltas), deltas, items[-1]


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def predicted_total(engine) -> float:
    """llama.cpp's own count of the tokens it decoded, from its metrics."""
    match = re.search(r"^llamacpp:tokens_predicted_total (\S+)$", engine.backend.server.handle_metrics(), re.M)
    return float(match.group(1))


def test_loads_the_gguf_without_conversion(llama_engine):
    info = llama_engine.info
    assert info.backend == "llamacpp" and info.device == "cpu"
    assert info.quantization == "Q4_K_M" and "llama.cpp" in info.backend_detail
    assert llama_engine.queue.capacity == 4  # the engine admits one request per llama.cpp slot


def test_streams_deltas_then_llamacpp_stats(llama_engine):
    text, deltas, stats = run(llama_engine, STORY, SamplingParams(temperature=0, max_new_tokens=12))
    assert text.strip() and len(deltas) >= 1
    assert stats.prompt_tokens > 10 and 1 <= stats.completion_tokens <= 12
    assert stats.ttft_s > 0 and stats.total_s >= stats.ttft_s and stats.finish_reason in ("stop", "length")
    if stats.completion_tokens > 1:
        assert stats.decode_tokens_per_s and stats.tokens_per_s == stats.decode_tokens_per_s  # llama.cpp's timing


def test_stop_ends_decoding_early(llama_engine):
    cancel = threading.Event()
    before = predicted_total(llama_engine)
    stream = llama_engine.stream_chat(STORY, SamplingParams(temperature=0, max_new_tokens=400), None, cancel)
    seen = 0
    for item in stream:
        if isinstance(item, str):
            seen += 1
            cancel.set()  # the user presses Stop after the first words
        else:
            stats = item
    assert stats.finish_reason == "cancelled" and stats.completion_tokens < 20
    assert predicted_total(llama_engine) - before < 20  # llama.cpp itself stopped, far short of 400


def test_stop_strings_cut_the_answer(llama_engine):
    params = SamplingParams(temperature=0, max_new_tokens=24, repetition_penalty=1.0)
    full, _, _ = run(llama_engine, STORY, params)
    words = full.split()
    assert len(words) >= 3, full
    stop = words[2]
    cut, _, stats = run(llama_engine, STORY, SamplingParams(temperature=0, max_new_tokens=24, repetition_penalty=1.0,
                                                            stop=(stop,)))
    assert stop not in cut and cut.rstrip() == full[:full.index(stop)].rstrip()
    assert stats.finish_reason == "stop"


def test_greedy_is_deterministic_and_reuse_keeps_the_answer(llama_engine, monkeypatch):
    first, _, _ = run(llama_engine, ask(QUESTION))
    again, _, stats = run(llama_engine, ask(QUESTION))
    assert again == first and stats.cached_tokens > 0  # the second prompt came from llama.cpp's cache
    turn2 = [*ask(QUESTION), {"role": "assistant", "content": first}, *ask("And of Italy?")]
    reused, _, reused_stats = run(llama_engine, turn2, session_id="reuse")
    monkeypatch.setattr(llama_engine.backend, "cache_prompt", False)  # every token prefilled anew
    fresh, _, fresh_stats = run(llama_engine, turn2, session_id="reuse")
    assert reused_stats.cached_tokens > 0 and fresh_stats.cached_tokens == 0
    assert reused == fresh


def test_concurrent_requests_do_not_mix(llama_engine):
    # Batched decoding may round differently from a lone request (llama.cpp says so), so a greedy
    # answer can drift late in the text; what must hold is that each stream is about its own prompt.
    words = ["zebra", "violin", "tomato", "glacier"]
    # One worked example first: the small base model then answers with just the word, which leaves
    # batching's rounding no room to lead an answer elsewhere (on a loaded machine it once said " 10").
    prompts = [[{"role": "user", "content": "Repeat this word: apple"}, {"role": "assistant", "content": "apple"},
                {"role": "user", "content": f"Repeat this word: {w}"}] for w in words]
    stop_word = SamplingParams(temperature=0, max_new_tokens=16, repetition_penalty=1.0, stop=(words[3],))
    plans = [(prompts[0], GREEDY), (prompts[1], GREEDY), (prompts[2], GREEDY), (prompts[3], stop_word)]
    with ThreadPoolExecutor(len(plans)) as pool:
        results = list(pool.map(lambda plan: run(llama_engine, *plan), plans))
    for word, (text, _, stats) in zip(words[:3], results[:3], strict=True):
        assert word in text.lower() and not any(w in text.lower() for w in words if w != word), text
        assert stats.finish_reason in ("stop", "length") and stats.prompt_tokens > 0
    last_text, _, last_stats = results[3]
    assert words[3] not in last_text and last_stats.finish_reason == "stop"  # its own stop string, not the others'


def test_count_tokens_uses_the_gguf_tokenizer(llama_engine):
    assert llama_engine.count_tokens("Hello world") == 2
    assert llama_engine.count_tokens("") == 0


@pytest.mark.parametrize("max_tokens", [1, 3])
def test_max_tokens_is_a_length_stop(llama_engine, max_tokens):
    _, _, stats = run(llama_engine, STORY, SamplingParams(temperature=0, max_new_tokens=max_tokens))
    assert stats.completion_tokens <= max_tokens


def test_concurrent_tokenizing_leaves_no_idle_connection(llama_engine):
    # llama.cpp's HTTP server has 2 worker threads and keeps each on a keep-alive connection until it
    # idles out (5 s): a pooled idle connection per worker made the 3rd and 4th concurrent stream
    # wait 5 s for its tokens. Every tokenize must therefore close its connection.
    client = llama_engine.backend._http
    seen: list[str | None] = []
    hook = lambda response: seen.append(response.headers.get("connection"))  # noqa: E731
    client.event_hooks["response"].append(hook)
    texts = [f"Tell me three surprising facts about topic number {i}." for i in range(8)]
    try:
        with ThreadPoolExecutor(len(texts)) as pool:
            counts = list(pool.map(llama_engine.count_tokens, texts))
    finally:
        client.event_hooks["response"].remove(hook)
    assert counts == [llama_engine.count_tokens(t) for t in texts] and all(c > 5 for c in counts)
    assert seen == ["close"] * len(texts)


def test_the_chat_path_for_turns_with_images_streams_from_the_real_server(llama_engine, monkeypatch):
    """A turn with images goes through llama.cpp's own chat path (``llamacpp_vision``); the embedded model has no
    projector, so a text turn is routed there to check that its chunks are read as the completion path's are."""
    import engine.backends.llamacpp as llamacpp

    monkeypatch.setattr(llamacpp, "has_images", lambda messages: True)
    text, deltas, stats = run(llama_engine.backend, ask(QUESTION), cancel=threading.Event())
    assert "Paris" in text and deltas
    assert 1 <= stats.completion_tokens <= 16 and stats.ttft_s > 0 and stats.finish_reason in ("stop", "length")
