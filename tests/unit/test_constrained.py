"""Structured output on the transformers backend: xgrammar masks a real (tiny, random) model."""

from __future__ import annotations

import json
import string

import pytest

from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine

pytest.importorskip("xgrammar")
jsonschema = pytest.importorskip("jsonschema")

SCHEMA = {"type": "object", "properties": {
    "ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 99},
    "color": {"enum": ["red", "blue"]}, "tags": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 3}},
    "required": ["ok", "n", "color", "tags"]}


def build_char_model(directory):
    """A 2-layer random Llama whose tokens are single characters, so any JSON can be written."""
    import torch
    from tokenizers import Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\x0b\x0c\r"]
    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *chars])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                        unk_token="<unk>", pad_token="<pad>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}assistant:{% endif %}")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def char_engine(tmp_path_factory):
    directory = build_char_model(tmp_path_factory.mktemp("char-llama"))
    return Engine.load(EngineConfig(model=str(directory), device="cpu", backend="transformers", quantization="none"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_weights_still_write_json_valid_for_the_schema(char_engine, seed):
    text, stats = char_engine.chat([{"role": "user", "content": "json please"}], SamplingParams(
        temperature=1.0, top_k=0, top_p=1.0, seed=seed, max_new_tokens=120, json_schema=SCHEMA))
    jsonschema.validate(json.loads(text), SCHEMA)
    assert stats.finish_reason == "stop"  # the grammar ended the answer, not max_new_tokens


def test_a_forced_call_through_the_engine_parses_as_a_tool_call(char_engine):
    from engine.answer_stream import answer_events
    from engine.json_schema import tool_call_schema
    from engine.tool_calls import ToolCallDelta

    tool = {"name": "pick", "parameters": {"type": "object", "properties": {"color": {"enum": ["red", "blue"]}},
                                           "required": ["color"]}}
    params = SamplingParams(temperature=0.8, seed=5, max_new_tokens=120, json_schema=tool_call_schema([tool]),
                            tools=({"type": "function", "function": tool},))
    events = list(answer_events(char_engine.stream_chat([{"role": "user", "content": "go"}], params), ["pick"]))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls[0].name == "pick" and events[-1].finish_reason == "tool_calls"
    assert json.loads("".join(c.arguments for c in calls))["color"] in ("red", "blue")
