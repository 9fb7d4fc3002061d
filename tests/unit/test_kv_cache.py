"""KV-cache reuse across turns: identical greedy output, prefix matching, LRU byte budget, sliding windows."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.kv_cache import PrefixCache, cache_nbytes, new_cache

GREEDY = SamplingParams(temperature=0, max_new_tokens=12)
QUESTIONS = ["hello tell me a story about a dragon", "what is the red cat doing", "why is the night so big",
             "find the blue file please", "how fast can the dog run"]


def cache_of(ids: list[int], heads: int = 2, dim: int = 4, layers: int = 2):
    """A real DynamicCache holding ``len(ids)`` tokens (values encode the token ids)."""
    data = []
    for layer in range(layers):
        keys = torch.tensor(ids, dtype=torch.float32).view(1, 1, -1, 1).expand(1, heads, -1, dim) + layer
        data.append((keys.clone(), keys.clone() * 2))
    return DynamicCache(ddp_cache_data=data)


def converse(engine, turns: int, session_id: str | None = "s1") -> tuple[list[str], list]:
    history, answers, stats = [], [], []
    for question in QUESTIONS[:turns]:
        history.append({"role": "user", "content": question})
        text, stat = engine.chat(history, GREEDY, session_id=session_id)
        history.append({"role": "assistant", "content": text})
        answers.append(text)
        stats.append(stat)
    return answers, stats


@pytest.fixture(scope="module")
def engine_without_reuse(tiny_model_dir):
    return Engine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", kv_cache_bytes=0))


@pytest.fixture(scope="module")
def sliding_model_dir(tmp_path_factory):
    """A tiny Gemma 3 (window 8, like Gemma 3's 512 but reached within a few turns) with the test tokenizer."""
    from tiny_model import build_tiny_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    directory = build_tiny_model(tmp_path_factory.mktemp("tiny-gemma3"))
    llama = Engine.load(EngineConfig(model=str(directory), device="cpu", kv_cache_bytes=0)).backend
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=llama.model.config.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=8, max_position_embeddings=512,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        bos_token_id=llama.tokenizer.bos_token_id, eos_token_id=llama.tokenizer.eos_token_id,
        pad_token_id=llama.tokenizer.pad_token_id,
    )
    Gemma3ForCausalLM(config).save_pretrained(directory)
    return directory


def test_reuse_gives_identical_greedy_answers_and_reports_cached_tokens(tiny_engine, engine_without_reuse):
    reused, stats = converse(tiny_engine, 4, session_id="identity")
    fresh, fresh_stats = converse(engine_without_reuse, 4, session_id="identity")
    assert reused == fresh
    assert all(s.cached_tokens == 0 for s in fresh_stats)
    assert all(s.cached_tokens > 0 for s in stats[1:])
    assert all(s.cached_tokens < s.prompt_tokens for s in stats)  # at least one token is prefilled
    assert "cached" in stats[-1].summary()


def test_sliding_window_model_reuses_past_the_window_with_identical_output(sliding_model_dir):
    with_reuse = Engine.load(EngineConfig(model=str(sliding_model_dir), device="cpu"))
    without = Engine.load(EngineConfig(model=str(sliding_model_dir), device="cpu", kv_cache_bytes=0))
    reused, stats = converse(with_reuse, 4)
    assert reused == converse(without, 4)[0]
    assert stats[-1].prompt_tokens > 3 * 8 and stats[-1].cached_tokens > 8  # well past the window


def test_full_layer_cache_matches_generate_with_the_models_sliding_cache(sliding_model_dir):
    from engine.history import render_prompt_ids

    backend = Engine.load(EngineConfig(model=str(sliding_model_dir), device="cpu")).backend
    messages = [{"role": "user", "content": " ".join(QUESTIONS)}]
    ids = render_prompt_ids(backend.tokenizer, messages)
    assert len(ids) > 3 * 8
    text, _ = Engine(backend).chat(messages, GREEDY)
    with torch.inference_mode():
        out = backend.model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                                     repetition_penalty=GREEDY.repetition_penalty)  # DynamicCache(config)
    full = backend.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    # Same tokens; the base-model completion format may end the answer early (it loops), never change it.
    assert text == full or (full.startswith(text) and backend.prompt_format.end_of_answer(full, final=True))


def test_api_clients_resending_history_hit_by_longest_prefix(tiny_engine):
    history = [{"role": "user", "content": "what is the red dog"}]
    text, first = tiny_engine.chat(history, GREEDY)  # no session id, like an API client
    history += [{"role": "assistant", "content": text}, {"role": "user", "content": "and the blue cat"}]
    _, second = tiny_engine.chat(history, GREEDY)
    assert second.cached_tokens >= first.prompt_tokens - 1


def test_stored_entry_is_not_mutated_by_the_next_turn(tiny_engine):
    kv = tiny_engine.backend.kv
    history = [{"role": "user", "content": "the old dog and the new cat"}]
    text, _ = tiny_engine.chat(history, GREEDY, session_id="frozen")
    entry = kv._entries["frozen"]
    snapshot = [(k.clone(), v.clone()) for k, v, *_ in entry.cache]
    length = entry.cache.get_seq_length()
    history += [{"role": "assistant", "content": text}, {"role": "user", "content": "yes"}]
    _, stats = tiny_engine.chat(history, GREEDY, session_id="other")
    assert stats.cached_tokens > 0
    assert entry.cache.get_seq_length() == length
    assert all(torch.equal(k, k0) and torch.equal(v, v0) for (k, v, *_), (k0, v0) in zip(entry.cache, snapshot, strict=True))


def test_lookup_picks_the_longest_common_prefix_and_leaves_one_token():
    kv = PrefixCache(max_bytes=10**6, min_prefix=2)
    kv.store(list(range(10)), cache_of(list(range(10))), "a")
    kv.store([0, 1, 2, 3, 4, 99, 98], cache_of([0, 1, 2, 3, 4, 99, 98]), "b")
    cache, length = kv.lookup(list(range(8)) + [7, 7])
    assert length == 8 and cache.get_seq_length() == 8
    assert torch.equal(next(iter(cache))[0][0, 0, :, 0], torch.arange(8, dtype=torch.float32))
    cache, length = kv.lookup(list(range(10)))  # the whole prompt is cached: one token stays to prefill
    assert length == 9 and cache.get_seq_length() == 9
    assert kv.lookup([5, 6, 7]) == (None, 0)
    assert (kv.stats().hits, kv.stats().misses) == (2, 1)


def test_session_entry_wins_ties_and_replaces_its_previous_entry():
    kv = PrefixCache(max_bytes=10**6, min_prefix=2)
    kv.store([1, 2, 3, 4], cache_of([1, 2, 3, 4]))
    kv.store([1, 2, 3, 5], cache_of([1, 2, 3, 5]), "mine")
    kv.store([1, 2, 3, 6, 7], cache_of([1, 2, 3, 6, 7]), "mine")
    assert kv.stats().entries == 2
    assert kv._entries["mine"].ids == (1, 2, 3, 6, 7)
    kv.store([1, 2, 3, 4, 8, 9], cache_of([1, 2, 3, 4, 8, 9]), "longer")  # the anonymous [1,2,3,4] is dominated
    assert kv.stats().entries == 2


def test_lru_eviction_keeps_the_byte_budget():
    one = cache_nbytes(cache_of(list(range(10))))
    kv = PrefixCache(max_bytes=2 * one, min_prefix=2)
    kv.store(list(range(10)), cache_of(list(range(10))), "a")
    kv.store(list(range(100, 110)), cache_of(list(range(100, 110))), "b")
    kv.lookup(list(range(10)) + [1])  # "a" becomes the most recently used
    kv.store(list(range(200, 210)), cache_of(list(range(200, 210))), "c")
    assert set(kv._entries) == {"a", "c"} and kv.stats().bytes == 2 * one
    assert not kv.store(list(range(30)), cache_of(list(range(30))), "too-big")
    assert set(kv._entries) == {"a", "c"}


def test_store_rejects_ids_that_do_not_match_the_cache():
    with pytest.raises(ValueError):
        PrefixCache(10**6).store([1, 2, 3], cache_of([1, 2]))


def test_sliding_layers_past_their_window_are_never_cropped():
    from transformers import Gemma3TextConfig

    config = Gemma3TextConfig(num_hidden_layers=2, sliding_window=4, layer_types=["sliding_attention",
                                                                                 "full_attention"])
    cache = DynamicCache(config=config)
    for layer in range(2):
        cache.update(torch.zeros(1, 1, 6, 2), torch.zeros(1, 1, 6, 2), layer)
    kv = PrefixCache(max_bytes=10**6, min_prefix=2)
    kv.store([1, 2, 3, 4, 5, 6], cache)
    assert kv.lookup([1, 2, 3, 4, 9, 9]) == (None, 0)  # would need a crop past the window
    hit, length = kv.lookup([1, 2, 3, 4, 5, 6, 7])  # exact continuation: no crop needed
    assert length == 6 and hit.get_seq_length() == 6


def test_new_cache_has_full_layers():
    cache = new_cache()
    cache.update(torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2), 0)
    assert not any(cache.is_sliding)
