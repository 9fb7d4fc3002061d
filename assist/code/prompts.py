"""Chat messages and sampling defaults for the Code assistant's modes.

The prompts are plain, ask for exactly one fenced block tagged with the language, and come with a
one-shot example in the same language (an earlier user/assistant pair) that shows the answer's
shape. They were written for the earlier default, a 270M *base* model (Gemma 3) that copies an
example far better than it follows a rule, and still hold for base models passed with
``--model``; the instruction-tuned default (Qwen2.5-Coder-0.5B-Instruct) follows them as well.
Chat messages cannot pre-fill the start of the assistant's answer, so the example is what
teaches a model to open with a fence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from assist.code.languages import CodeRequestError, Language, get_language
from engine.config import SamplingParams

__all__ = ["MODES", "SYSTEM_PROMPT", "STOP_STRINGS", "CodeRequest", "normalize_mode", "build_messages",
           "default_params", "params_for"]

#: mode key -> label shown in the UI.
MODES: dict[str, str] = {
    "generate": "Generate",
    "explain": "Explain",
    "fix": "Fix",
    "refactor": "Refactor",
    "tests": "Write tests",
}

SYSTEM_PROMPT = (
    "You are a careful programming assistant. When you write code, put all of it in one fenced "
    "Markdown code block tagged with the language, for example ```python, and close the block "
    "with ```. Keep any explanation short and do not invent APIs."
)

# Turn markers a base model tends to write when it runs on into an imagined next turn. Whatever
# template the engine uses for a model without one, one of these usually starts the next turn.
STOP_STRINGS: tuple[str, ...] = (
    "<end_of_turn>", "<start_of_turn>", "<|im_end|>", "<|im_start|>", "<|endoftext|>",
    "\nUser:", "\nUSER:", "\n### User", "\nHuman:", "\n### Instruction",
)


def normalize_mode(mode: str) -> str:
    """Mode key from a key or a UI label ("Write tests" -> "tests")."""
    key = (mode or "").strip().lower()
    key = {label.lower(): k for k, label in MODES.items()}.get(key, key)
    if key not in MODES:
        raise CodeRequestError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES.values())}.")
    return key


@dataclass(frozen=True)
class CodeRequest:
    """One Code-tab request. ``language`` may be a key, a display name or a fence tag.

    ``task`` is the description (Generate, Write tests) or the instruction (Fix, Refactor) or
    the question (Explain); ``code`` is the input code; ``error`` is an error message or a
    description of the wrong behaviour (Fix).
    """

    mode: str
    language: str
    task: str = ""
    code: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        mode = normalize_mode(self.mode)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "language", get_language(self.language).key)
        for name in ("task", "code", "error"):
            object.__setattr__(self, name, (getattr(self, name) or "").strip("\n").rstrip())
        if mode == "generate" and not self.task.strip():
            raise CodeRequestError("Describe what the code should do.")
        if mode in ("explain", "fix", "refactor") and not self.code.strip():
            raise CodeRequestError(f"Paste the code to {MODES[mode].lower()} in the code box.")
        if mode == "tests" and not (self.code.strip() or self.task.strip()):
            raise CodeRequestError("Paste the code to test, or describe what it does.")

    @property
    def lang(self) -> Language:
        return get_language(self.language)


def _fenced(code: str, lang: Language) -> str:
    # A longer fence when the code itself contains ``` (Markdown inside a docstring, say).
    fence = "````" if "```" in code else "```"
    return f"{fence}{lang.fence}\n{code}\n{fence}"


def _user_message(req: CodeRequest) -> str:
    lang, block = req.lang, f"```{req.lang.fence}"
    task, error = req.task.strip(), req.error.strip()
    if req.mode == "generate":
        parts = [f"Write {lang.name} code for this task:\n{task}"]
        if req.code.strip():
            parts.append(f"Build on this existing code:\n{_fenced(req.code, lang)}")
        parts.append(f"Reply with the complete code in one {block} block.")
    elif req.mode == "explain":
        parts = [f"Explain what this {lang.name} code does.", _fenced(req.code, lang)]
        if task or error:
            parts.append(f"Question: {task or error}")
        parts.append("Answer in a few short sentences or bullet points.")
    elif req.mode == "fix":
        parts = [f"Fix this {lang.name} code.", _fenced(req.code, lang)]
        if error:
            parts.append(f"Error:\n{error}")
        if task:
            parts.append(f"Instruction: {task}")
        parts.append(f"Reply with the corrected code in one {block} block, "
                     "then one sentence that says what you changed.")
    elif req.mode == "refactor":
        goal = task or "make it clearer and simpler without changing what it does"
        parts = [f"Refactor this {lang.name} code: {goal}.", _fenced(req.code, lang)]
        if error:
            parts.append(f"Note: {error}")
        parts.append(f"Reply with the refactored code in one {block} block, "
                     "then one sentence that says what you changed.")
    else:  # tests
        parts = [f"Write unit tests with {lang.test_framework} for this {lang.name} code."]
        if req.code.strip():
            parts.append(_fenced(req.code, lang))
        if task:
            parts.append(f"What it should do: {task}")
        parts.append(f"Reply with the test code in one {block} block.")
    return "\n\n".join(parts)


def _example(mode: str, lang: Language) -> list[dict]:
    """A one-shot user/assistant pair in the request's language, for the modes that need one."""
    good = lang.example
    if mode in ("generate", "tests"):
        # Tests get the Generate example too: the point is the shape of the answer.
        req = CodeRequest("generate", lang.key, task=lang.example_task)
        answer = _fenced(good, lang)
    elif mode in ("fix", "refactor"):
        broken = good.replace(" + ", " - ", 1)
        req = CodeRequest("fix", lang.key, code=broken, error="It subtracts instead of adding.")
        answer = _fenced(good, lang) + "\n\nChanged `-` to `+` so the two values are added."
    else:
        req = CodeRequest("explain", lang.key, code=good)
        answer = "It adds two values with `a + b` and returns (or prints) the sum."
    return [{"role": "user", "content": _user_message(req)}, {"role": "assistant", "content": answer}]


def build_messages(request: CodeRequest, few_shot: bool = True) -> list[dict]:
    """System prompt, an optional one-shot example, and the user's request as chat messages."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    if few_shot:
        messages += _example(request.mode, request.lang)
    messages.append({"role": "user", "content": _user_message(request)})
    return messages


def default_params(mode: str) -> SamplingParams:
    """Sampling defaults per mode: low temperature, turn-marker stop strings.

    Fix and Refactor copy most of the input back, so they decode greedily with no repetition
    penalty (copying *is* repetition) and ask for prompt-lookup decoding, which drafts tokens by
    matching n-grams of the prompt: transformers does it per request; llama.cpp only server-wide
    (``--llamacpp-prompt-lookup``, off by default: measured in docs/performance.md).
    """
    mode = normalize_mode(mode)
    if mode in ("fix", "refactor"):
        return SamplingParams(temperature=0.0, top_p=1.0, top_k=0, max_new_tokens=768,
                              repetition_penalty=1.0, stop=STOP_STRINGS, prompt_lookup_num_tokens=10)
    if mode == "explain":
        return SamplingParams(temperature=0.3, top_p=0.9, top_k=40, max_new_tokens=384,
                              repetition_penalty=1.1, stop=STOP_STRINGS)
    return SamplingParams(temperature=0.2, top_p=0.95, top_k=40,
                          max_new_tokens=768 if mode == "tests" else 512,
                          repetition_penalty=1.05, stop=STOP_STRINGS)


def params_for(request: CodeRequest, max_tokens_cap: int = 2048) -> SamplingParams:
    """``default_params`` with room to echo long input code back (Fix, Refactor, Write tests)."""
    params = default_params(request.mode)
    if request.mode in ("fix", "refactor", "tests") and request.code:
        # Roughly 3 characters per token for code, plus room for the summary.
        wanted = min(max_tokens_cap, len(request.code) // 3 + 256)
        if wanted > params.max_new_tokens:
            params = replace(params, max_new_tokens=wanted)
    return params
