"""Chat templates for models that ship none, chosen by model family.

Base models (the embedded Gemma 3 270M among them) have no ``chat_template``; we install a
fallback in the family's own turn format so ``apply_chat_template`` works the same for every
model, and we add the turn markers as stop strings so the model does not write both sides.
"""

from __future__ import annotations

__all__ = ["ensure_chat_template", "default_stop_strings"]

# Gemma folds the system prompt into the first user turn; its turn markers are single tokens.
_GEMMA = (
    "{{ bos_token }}"
    "{% set ns = namespace(system='') %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.system = m['content'] + '\n\n' %}"
    "{% else %}"
    "{% set role = 'model' if m['role'] == 'assistant' else 'user' %}"
    "<start_of_turn>{{ role }}\n{% if role == 'user' %}{{ ns.system }}{% set ns.system = '' %}{% endif %}"
    "{{ m['content'] | trim }}<end_of_turn>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# ChatML: understood by Qwen-family and many fine-tunes.
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Plain text for anything else: readable by any base model.
_PLAIN = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}### User:\n{{ m['content'] }}\n\n"
    "{% else %}### Assistant:\n{{ m['content'] }}\n\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)

_FAMILIES = {
    "gemma": (_GEMMA, ("<end_of_turn>", "<start_of_turn>")),
    "qwen": (_CHATML, ("<|im_end|>", "<|im_start|>")),
    "plain": (_PLAIN, ("\n### User:", "\n### Assistant:")),
}


def _family(model_type: str) -> str:
    model_type = (model_type or "").lower()
    if model_type.startswith("gemma"):
        return "gemma"
    if model_type.startswith("qwen"):
        return "qwen"
    return "plain"


def ensure_chat_template(tokenizer, model_type: str) -> bool:
    """Install a fallback template when the tokenizer has none; return True if one was installed."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = _FAMILIES[_family(model_type)][0]
    return True


def default_stop_strings(tokenizer, model_type: str, fallback_installed: bool) -> tuple[str, ...]:
    """Turn markers to stop on; models with their own template stop on their EOS token instead."""
    if not fallback_installed:
        return ()
    return _FAMILIES[_family(model_type)][1]
