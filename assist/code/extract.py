"""Pull the code out of a model's answer, also while the answer is still streaming.

Handles ``` and ~~~ fences (with or without a language tag, indented inside lists, opened
mid-line, closed at the end of a code line, or not closed yet), several blocks (the one in the
requested language, else the longest), stray turn markers, and answers with no fences at all
(a line classifier finds the longest run of code-looking lines, which also covers Markdown's
indented code blocks).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from assist.code.languages import LANGUAGES, Language, get_language

__all__ = ["Extracted", "extract_code", "answer_complete", "clean_answer", "runaway"]


@dataclass(frozen=True)
class Extracted:
    """The chosen code, its fence tag (lower case, None if untagged or unfenced), and the rest.

    ``complete`` is False while the chosen fenced block has not been closed yet (streaming).
    """

    code: str
    language_tag: str | None
    prose: str
    complete: bool = True


@dataclass
class _Block:
    tag: str | None
    code: str
    closed: bool
    source: str  # the block as written, fences included, to put back into the prose


_KNOWN_TAGS = frozenset(tag for lang in LANGUAGES.values() for tag in lang.tags)
_NON_CODE_TAGS = frozenset({"text", "txt", "output", "console", "stdout", "plaintext", "log", "shell-session"})
# Everything from one of these on is an imagined next turn, not part of the answer.
_CUT = re.compile(r"<end_of_turn>|<start_of_turn>|<\|im_end\|>|<\|im_start\|>|<\|endoftext\|>|</s>|<eos>"
                  r"|\n(?:User|USER|Human|HUMAN):|\n### (?:User|Instruction)\b")
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_TAG_WORD = re.compile(r"^\{?\.?([A-Za-z0-9_+#.\-]{1,20})\}?$")
_STARTS_CODE = frozenset({"def", "class", "import", "from", "function", "const", "let", "var", "return",
                          "fn", "func", "package", "select", "insert", "create", "update", "delete",
                          "public", "private", "int", "void", "echo", "print", "#include", "#!/bin/bash"})


def clean_answer(text: str) -> str:
    """The answer without an imagined next turn (``<end_of_turn>``, ``\nUser:`` ...), LF line ends."""
    match = _CUT.search(text or "")
    text = text[: match.start()] if match else (text or "")
    return text.replace("\r\n", "\n")


def _parse_info(info: str) -> tuple[str | None, str | None]:
    """Split a fence's info string into (tag, first code line). Models write ```python def f():"""
    info = info.strip()
    if not info:
        return None, None
    word, _, rest = info.partition(" ")
    tag = _TAG_WORD.match(word)
    if tag is None or (word.lower() in _STARTS_CODE and word.lower() not in _KNOWN_TAGS and rest):
        return None, info
    return tag.group(1).lower(), (rest.strip() or None)


def _dedent_line(line: str, indent: str) -> str:
    width = 0
    while width < len(indent) and width < len(line) and line[width] in " \t":
        width += 1
    return line[width:]


def _parse(text: str) -> tuple[list[_Block], list[str | _Block]]:
    """Blocks in order, and the answer as a list of prose lines and blocks."""
    lines = text.split("\n")
    blocks: list[_Block] = []
    parts: list[str | _Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        opened = _OPEN.match(line)
        if opened is None and "```" in line:
            # A fence opened mid-line ("Here it is: ```python") or a whole one-line block.
            head, _, tail = line.partition("```")
            if "```" in tail:
                info, _, after = tail.partition("```")
                tag, first = _parse_info(info)
                block = _Block(tag, first or "", True, "```" + info + "```")
                blocks.append(block)
                parts += [head.rstrip(), block] + ([after.strip()] if after.strip() else [])
                i += 1
                continue
            if head.strip():
                parts.append(head.rstrip())
            line = "```" + tail
            opened = _OPEN.match(line)
        if opened is None or (opened["fence"][0] == "`" and "`" in opened["info"]):
            parts.append(line)
            i += 1
            continue
        indent, fence = opened["indent"], opened["fence"]
        tag, first = _parse_info(opened["info"])
        body = [first] if first else []
        closer = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j, closed = i + 1, False
        while j < len(lines):
            if closer.match(lines[j]):
                closed = True
                break
            stripped = lines[j].rstrip()
            if fence[0] == "`" and stripped.endswith(fence) and not stripped.endswith("`" + fence):
                # Closed at the end of the last code line: "    return x```".
                body.append(_dedent_line(stripped[: -len(fence)], indent))
                closed = True
                break
            body.append(_dedent_line(lines[j], indent))
            j += 1
        source = "\n".join([line] + lines[i + 1 : j + 1])
        block = _Block(tag, "\n".join(body).strip("\n").rstrip(), closed, source)
        blocks.append(block)
        parts.append(block)
        i = j + 1
    return blocks, parts


def _choose(blocks: list[_Block], lang: Language | None) -> _Block:
    useful = [b for b in blocks if b.code.strip()] or blocks
    if lang is not None:
        matching = [b for b in useful if b.tag in lang.tags]
        if matching:
            return max(matching, key=lambda b: len(b.code))
        # Untagged or unknown-tag blocks before blocks that are clearly another language.
        neutral = [b for b in useful if b.tag is None or b.tag not in _KNOWN_TAGS | _NON_CODE_TAGS]
        useful = neutral or useful
    code_like = [b for b in useful if b.tag not in _NON_CODE_TAGS] or useful
    return max(code_like, key=lambda b: len(b.code))


def _prose(parts: list[str | _Block], chosen: list[_Block]) -> str:
    out = [p.source if isinstance(p, _Block) else p for p in parts if not any(p is c for c in chosen)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


# --- answers without fences: classify lines as code, weak (joins code) or prose -------------------

_CODE_START = re.compile(
    r"""^\s*(?:
    (?:async\s+)?def\s|class\s|import\s|from\s+[\w.]+\s+import\b|return\b|yield\b|raise\b|
    (?:pass|break|continue)\s*;?$|if\s.*:$|elif\s|else\s*:|for\s.*:$|while\s.*:$|try\s*:|except\b|finally\s*:|
    with\s.*:$|@\w|\#include|\#define|\#if|\#endif|\#pragma|\#!|using\s|namespace\s|template\s*<|
    package\s|func\s|fn\s|pub\s|impl\b|use\s+\w|mod\s|let\s|const\s|var\s|function\b|export\s|
    module\.exports|require\(|console\.|public\s|private\s|protected\s|static\s|
    (?:unsigned\s+|long\s+)*(?:int|void|char|float|double|bool|size_t|auto)\b[\w\s*&:<>,]*[\w)]\s*[({;=]|
    std::|struct\s|enum\s|typedef\s|interface\s|type\s+\w+\s*=|
    (?:SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|WITH|FROM|WHERE|GROUP\s+BY|ORDER\s+BY|JOIN|
       LEFT\s+JOIN|INNER\s+JOIN|VALUES|SET|LIMIT|HAVING)\b|
    echo\s|printf\b|print\(|local\s|readonly\s|(?:fi|done|then|do|esac)\s*;?$|case\s.*\sin$|
    for\s+\w+\s+in\b|set\s+[-+]\w|\w+\(\)\s*\{|.*;\s*(?:do|then)$|
    [{}\])]|//|/\*|\*/
    )""",
    re.X,
)
_ASSIGN_OR_CALL = re.compile(r"^\s*(?:[A-Za-z_$][\w.$\[\]'\"]*\s*(?:[-+*/%|&^]|//|\*\*)?=(?!=)\s*\S"
                             r"|[A-Za-z_$][\w.$]*\(.*\)\s*;?\s*$)")
_DIRECTIVE = re.compile(r"#(?:!|\s*(?:include|define|undef|if|ifdef|ifndef|elif|else|endif|pragma)\b)")
_WORDS = re.compile(r"[A-Za-z']+")
_CODE, _WEAK, _PROSE, _TAG = "code", "weak", "prose", "tag"


def _classify(line: str) -> str:
    stripped = line.strip()
    if not stripped or (stripped.startswith(("#", "--", "* ")) and not _DIRECTIVE.match(stripped)):
        return _WEAK  # blank lines and comments join code but never start it
    if stripped.lower() in _KNOWN_TAGS:
        return _TAG  # a bare "python" line: the model wrote the tag without the fence
    if _CODE_START.match(line):
        return _CODE
    if line[:1] == "\t" or line.startswith("    "):
        return _WEAK
    punct = sum(stripped.count(c) for c in ";{}=<>()[]")
    if len(_WORDS.findall(stripped)) >= 4 and punct <= 1:
        return _PROSE
    if stripped.endswith((";", "{", "}")) or _ASSIGN_OR_CALL.match(line):
        return _CODE
    # Short lines ("wc -l $f", "Example:") join code next to them but never start or end it.
    return _WEAK if len(_WORDS.findall(stripped)) < 4 else _PROSE


def _heuristic(text: str) -> Extracted:
    lines = text.split("\n")
    kinds = [_classify(line) for line in lines]
    best: tuple[int, int, int] | None = None  # (code lines, start, end)
    start = 0
    for i in range(len(lines) + 1):
        if i == len(lines) or kinds[i] in (_PROSE, _TAG):
            run = kinds[start:i]
            count = run.count(_CODE)
            if count and (best is None or count > best[0]):
                lo, hi = start, i
                while kinds[lo] != _CODE and not lines[lo].strip().startswith(("#", "--", "//", "/*")):
                    lo += 1
                while kinds[hi - 1] != _CODE and not lines[hi - 1][:1].isspace():
                    hi -= 1  # trailing blanks and short unindented lines ("Done.")
                best = (count, lo, hi)
            start = i + 1
    if best is None:
        return Extracted("", None, text.strip())
    _, lo, hi = best
    code = textwrap.dedent("\n".join(lines[lo:hi])).strip("\n").rstrip()
    rest = [line for k, line in enumerate(lines) if not lo <= k < hi and kinds[k] != _TAG]
    return Extracted(code, None, re.sub(r"\n{3,}", "\n\n", "\n".join(rest)).strip())


def extract_code(text: str, language: str | Language | None = None, join: bool = False) -> Extracted:
    """The code in a model answer. ``join=True`` joins all blocks of the chosen kind in order."""
    text = clean_answer(text)
    lang = get_language(language) if language else None
    blocks, parts = _parse(text)
    if not blocks:
        return _heuristic(text)
    first = _choose(blocks, lang)
    chosen = [first]
    if join:
        chosen = [b for b in blocks if b.tag == first.tag and b.code.strip()] or [first]
    code = "\n\n".join(b.code for b in chosen)
    return Extracted(code, first.tag, _prose(parts, chosen), complete=all(b.closed for b in chosen))


def answer_complete(text: str, mode: str, language: str | Language | None = None) -> bool:
    """Whether a streaming answer already holds all we asked for, so generation can stop early.

    Generate / Write tests: a closed, non-empty block in the requested language (or untagged).
    Fix / Refactor: that, plus a summary paragraph after it (or a second fence, or 500
    characters of text). Explain: never; the stop strings and the token limit end it.
    """
    if mode not in ("generate", "tests", "fix", "refactor"):
        return False
    text = clean_answer(text)
    lang = get_language(language) if language else None
    blocks, parts = _parse(text)
    for block in blocks:
        if not block.closed or not block.code.strip():
            continue
        if lang is not None and block.tag is not None and block.tag not in lang.tags:
            continue  # e.g. a "pip install" shell block before the real code
        if mode in ("generate", "tests"):
            return True
        position = next(k for k, p in enumerate(parts) if p is block)
        after = parts[position + 1 :]
        if any(isinstance(p, _Block) for p in after):
            return True
        # We asked for one sentence: done once a non-empty line after the block has ended.
        finished = [p for p in after[:-1] if isinstance(p, str) and p.strip()]
        rest = "\n".join(p for p in after if isinstance(p, str))
        return bool(finished) or len(rest) > 500
    return False


def runaway(text: str, mode: str = "generate") -> str | None:
    """Why a streaming answer looks degenerate (small models loop), or None.

    Either the last 300 characters already occurred earlier (an exact loop), the same line keeps
    coming back (12 in a row), or one line has grown absurdly long ("or a == 1 or a == 3 or ...").
    """
    if len(text) > 600 and text[-300:] in text[:-300]:
        return "the model started repeating itself"
    lines = [line for line in text.rstrip("\n").split("\n") if line.strip()]
    if len(lines) >= 12 and len(set(lines[-12:])) == 1 and len(lines[-1].strip()) > 1:
        return "the model started repeating itself"
    longest = 2000 if mode == "explain" else 500
    last = text[text.rfind("\n") + 1 :]
    if len(last) > longest:
        return f"a line grew past {longest} characters"
    return None
