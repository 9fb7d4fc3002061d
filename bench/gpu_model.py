"""The benchmark's model: real Qwen2.5-7B shapes with random weights, made on the device.

Decoding speed depends on the shapes (bytes of weights read per token, matmul sizes), not on
the weight values, so a random model measures what a real 7B would, with nothing downloaded.
The tokenizer is Qwen2's own class over a made-up vocabulary in which each space-separated word is
one token, so prompts have known token counts; the chat template is Qwen's ChatML. The model has no EOS token: every answer runs to
``max_new_tokens``, so lengths are fixed and runs compare.
"""

from __future__ import annotations

import itertools
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Shape", "QWEN25_7B", "TINY", "build_tokenizer", "build_model", "save_model_dir", "prompt_words",
           "SPECIALS"]

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_POOL = 7000  # prompt words are drawn from this many
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class Shape:
    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6

    def config(self):
        from transformers import Qwen2Config

        return Qwen2Config(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads, max_position_embeddings=self.max_position_embeddings,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta}, rms_norm_eps=self.rms_norm_eps,
            hidden_act="silu", tie_word_embeddings=False, use_sliding_window=False, initializer_range=0.02,
            bos_token_id=None, eos_token_id=None, pad_token_id=0,
        )

    def kv_bytes_per_token(self, element_bytes: int = 2) -> int:
        head_dim = self.hidden_size // self.num_attention_heads
        return 2 * self.num_hidden_layers * self.num_key_value_heads * head_dim * element_bytes


# Qwen2.5-7B's config.json (the base model): 7.6 B parameters, 15.2 GB in bf16.
QWEN25_7B = Shape("qwen2.5-7b-shapes", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                  num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, max_position_embeddings=131072)
# Two layers, for --tiny (CI on a CPU, a smoke test on a GPU): seconds, same code paths. The MLP is
# wide enough that a long prompt needs clearly more memory than a short one (the OOM check).
TINY = Shape("tiny-2-layer", hidden_size=64, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=8192, max_position_embeddings=16384)


@lru_cache(maxsize=4)
def _words(count: int) -> list[str]:
    """Lower-case words by length (a … z, aa … zz, aaa …): every prefix of a word comes before it."""
    out: list[str] = []
    for length in range(1, 5):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            if len(out) == count:
                return out
            out.append("".join(letters))
    return out


def build_tokenizer(vocab_size: int):
    """Qwen2's own tokenizer class (byte-level BPE, Qwen's split regex) over a made-up vocabulary of
    exactly ``vocab_size`` ids: specials, letters, and " word" tokens with merges that build each
    word from its prefix, so one space-separated word is one token and decoded text re-encodes to
    the same ids (KV reuse across turns sees the real prefix)."""
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    base = SPECIALS + ["\u0120", "\u010a"] + list(string.ascii_lowercase)  # byte-level space and newline
    words = _words(vocab_size - len(base))
    vocab = {token: i for i, token in enumerate(base + ["\u0120" + w for w in words])}
    merges = [("\u0120" + w[:-1], w[-1]) for w in words]
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, additional_special_tokens=SPECIALS[1:])
    tokenizer.chat_template = _CHATML  # the model's own template: no fallback, no stop strings
    return tokenizer


def prompt_words(count: int, seed: int) -> str:
    """``count`` words of one token each; different seeds start with different words (no shared prefix)."""
    rng = random.Random(seed)
    pool = _words(26 + _POOL)[26:]  # two- and three-letter words: in every vocabulary of >= 8192 ids
    return " ".join([pool[seed % _POOL]] + [pool[rng.randrange(_POOL)] for _ in range(count - 1)])


def build_model(shape: Shape, dtype, device: str):
    """Random weights allocated and initialised directly on ``device`` (no CPU copy, no download)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(shape.config(), dtype=dtype)
    model.generation_config.eos_token_id = None  # fixed lengths: nothing ends an answer early
    model.generation_config.bos_token_id = None
    model.generation_config.pad_token_id = 0
    return model.eval()


def save_model_dir(shape: Shape, directory: Path, dtype, device: str) -> dict:
    """Build the model on ``device`` and save it with its tokenizer as a normal model directory."""
    import time

    started = time.perf_counter()
    model = build_model(shape, dtype, device)
    params = sum(p.numel() for p in model.parameters())
    built = time.perf_counter() - started
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    build_tokenizer(shape.vocab_size).save_pretrained(directory)
    saved = time.perf_counter() - started - built
    del model
    size = sum(f.stat().st_size for f in directory.iterdir() if f.is_file())
    return {"parameters": params, "build_s": round(built, 2), "save_s": round(saved, 2), "dir_bytes": size}
