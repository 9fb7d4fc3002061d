"""What Chat sends when the user changed nothing: the system prompt.

Models answer best in the words they were tuned with, so the default starts from the system text
the model's own chat template writes when none is given (Qwen's "You are Qwen, created by Alibaba
Cloud. You are a helpful assistant.") and adds one rule of ours: answer in the question's language.
On the 46 simple questions of ``bench/quality_bench.py`` (greedy, Qwen2.5-Coder-0.5B-Instruct) this
answered 42 right against 40 with a generic "You are a helpful assistant." (docs/performance.md).
Models whose template has no default (and base models) get the generic sentence.
"""

from __future__ import annotations

__all__ = ["GENERIC_SYSTEM_PROMPT", "LANGUAGE_RULE", "DEFAULT_SYSTEM_PROMPT", "system_prompt_for"]

GENERIC_SYSTEM_PROMPT = "You are a helpful assistant."
LANGUAGE_RULE = "Answer in the same language as the user's question."
DEFAULT_SYSTEM_PROMPT = f"{GENERIC_SYSTEM_PROMPT} {LANGUAGE_RULE}"  # for a model we know nothing of


def system_prompt_for(engine) -> str:
    """The default Chat system prompt for ``engine``'s model (remote models: the generic one)."""
    fmt = getattr(getattr(engine, "backend", None), "prompt_format", None)
    own = getattr(fmt, "default_system_prompt", None)
    return f"{own} {LANGUAGE_RULE}" if own else DEFAULT_SYSTEM_PROMPT
