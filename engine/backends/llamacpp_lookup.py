"""Prompt lookup (n-gram speculative decoding) for the llama.cpp backend, and why it is off by default.

llama.cpp drafts the next tokens by finding the last few generated tokens earlier in the context
(``ngram-simple``: a ``match_tokens``-gram lookup that proposes the ``draft_tokens`` that followed)
and verifies the draft in one batch, as transformers' ``prompt_lookup_num_tokens`` does. The
installed xllamacpp takes it only **server-wide** (``CommonParams.speculative``); its completion
requests have no speculative fields, so a Code fix cannot turn it on for itself alone.

Two facts measured on the embedded default (Gemma 3 270M Q4_K_M, 2 CPU cores; docs/performance.md):

* Greedy output stays identical only with flash attention off: llama.cpp's CPU flash-attention
  kernel rounds a batch of several tokens differently from a single token, so verifying drafts
  changed a Code-fix answer at its 13th token. With flash attention off, with and without lookup
  gave the same text on every prompt tried (23; tested), so ``configure`` turns it off whenever
  lookup is on. Measured, not guaranteed: other batch-shape rounding remains, and on the
  Qwen2.5-Coder-0.5B default (Q4_K_M) a Code fix's explanation after the code sometimes parts at a
  near-tie (the code itself stays the same; tests/integration/test_llamacpp_lookup.py).
* Server-wide, drafts also run on chat answers, where a wrong draft costs a batch of
  ``draft_tokens + 1`` tokens instead of one; counting "1, 2, 3, …" decoded markedly slower.
"""

from __future__ import annotations

__all__ = ["configure", "draft_counts", "LOOKUP_MATCH_TOKENS"]

LOOKUP_MATCH_TOKENS = 3  # n-gram looked up; transformers' prompt lookup matches up to 2-3 tokens too


def configure(params, draft_tokens: int, flash_attn: bool | None = None) -> None:
    """Set up ``params`` (xllamacpp ``CommonParams``) for prompt lookup drafting ``draft_tokens``
    (0: none) and the attention kernel (``None``: llama.cpp's choice unless lookup needs it off)."""
    import xllamacpp

    if draft_tokens < 0:
        raise ValueError(f"prompt lookup draft length must be 0 (off) or more, not {draft_tokens}")
    if draft_tokens:
        kind = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE
        params.speculative.types = [kind]
        ngram = params.speculative.ngram_simple
        ngram.size_n = LOOKUP_MATCH_TOKENS
        ngram.size_m = draft_tokens
        ngram.min_hits = 1
        if flash_attn is None:
            flash_attn = False  # identical greedy output needs batch-independent attention (see above)
    if flash_attn is not None:
        kinds = xllamacpp.llama_flash_attn_type
        params.flash_attn_type = kinds.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else kinds.LLAMA_FLASH_ATTN_TYPE_DISABLED


def draft_counts(timings: dict) -> tuple[int, int] | None:
    """(drafted, accepted) tokens from a llama.cpp ``timings`` record, when it drafted at all."""
    if "draft_n" not in timings:
        return None
    return int(timings["draft_n"]), int(timings.get("draft_n_accepted", 0))
