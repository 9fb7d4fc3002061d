"""Files attached to a Chat message: read by rag's parsers (OCR too), kept with the message, put in the prompt.

An attachment is a plain dict saved with the user message it came with (the conversation store's
``attachments``, exported and imported with it): ``{"id", "name", "format", "pages", "bytes",
"chars", "text"}``. ``text`` holds every page, pages separated by a form feed, so a reload, a
regenerate, an edited question or an imported conversation reads the same files without the
originals; ``pages`` is ``None`` for formats without pages.

The prompt (``ChatAttachments.prepare``) takes the files of the branch the model reads. When that
branch, files in whole, fits the engine's prompt budget (the engine alone decides what a prompt
may cost), each message carries its files as numbered source lines, one per page (``[1]
report.pdf p.3: …``, ``rag.prompts``), before its text: earlier turns stay the same text, so the
KV cache of the engine reuses them. Otherwise the files are indexed in a collection of their own
conversation (a ``DocumentStore`` beside the documents', deleted with the conversation), searched
with the last question, and the passages ``rag.passages`` picks go before that question. Without
an index (no document store), the passages are picked from the files' pages directly.
``cite`` checks the answer's citations against what it quotes (``rag.citations``: a small model
writes "[1]" whatever page it read; an uncited answer gets the number of the source it quotes) and
names the cited sources, so the answer says which file and page it used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from assist.errors import AssistError
from rag.citations import misplaced_citation
from rag.errors import CollectionNotFound, RagError
from rag.ocr import OcrOptions
from rag.parsing import PAGED_FORMATS, Page, ParsedDocument, parse_document
from rag.passages import select_passages
from rag.prompts import format_source, missing_citation, sources_message
from rag.retrieval import Hit, detect_language

__all__ = ["AttachmentError", "AttachmentLimits", "AttachedPrompt", "ChatAttachments", "read_attachments",
           "has_attachments", "PASSAGE_TOKENS"]

MiB = 1024 * 1024
PAGE_BREAK = "\f"
#: Tokens of retrieved passages a question reads when its files do not fit whole (a CPU waits ~7 ms
#: for each prompt token of the embedded model; the Docs tab reads 260).
PASSAGE_TOKENS = 600
_OVERHEAD = 4  # role markers and separators the chat template adds per message
_CANDIDATES = 24  # hits searched before those of other branches' files are dropped
_KEPT_HITS = 6
_NAME = re.compile(r"[^A-Za-z0-9_-]")
_CITED = re.compile(r"\[(\d{1,3})\]")
_REPEATED = re.compile(r"(\[\d+\])(?:[\s,]*\1)+")  # "[2] [2]" after a move: once
_ATTACHED = {"en": "Attached: ", "zh": "附件："}


class AttachmentError(AssistError):
    """A file cannot be attached as sent; the message says why and what to do."""

    http_status = 400


@dataclass(frozen=True)
class AttachmentLimits:
    max_files: int = 8  # per message
    max_file_bytes: int = 20 * MiB
    max_pages: int = 500
    max_chars: int = 400_000  # text of one file (~100k tokens): more belongs in a Docs collection


@dataclass
class AttachedPrompt:
    """The conversation as the model reads it, and the sources numbered in it (``[1]`` is ``sources[0]``)."""

    history: list[dict]
    sources: list[Hit] = field(default_factory=list)
    mode: str = ""  # "whole", "passages" or "" (no files)
    conversation: str = ""  # whose file index the passages came from (a cited page's preview reads it)


def has_attachments(history: Sequence[dict]) -> bool:
    return any(m.get("role") == "user" and m.get("attachments") for m in history or [])


def read_attachments(files: Sequence[tuple[str, bytes]], limits: AttachmentLimits = AttachmentLimits(),  # noqa: B008
                     ocr: OcrOptions | None = OcrOptions(), already: int = 0) -> tuple[list[dict], list[str]]:  # noqa: B008
    """``(attachments, errors)``: each file read by rag's parsers, or a sentence saying why it was not
    (damaged, encrypted, too large, unsupported, past the count limit with ``already`` attached)."""
    attachments: list[dict] = []
    errors: list[str] = []
    for name, data in files:
        if already + len(attachments) >= limits.max_files:
            errors.append(f"{name}: a message may carry at most {limits.max_files} files; send it with the next one.")
            continue
        try:
            attachments.append(_read(name, data, limits, ocr))
        except (RagError, AttachmentError) as exc:
            errors.append(str(exc))
    return attachments, errors


def _read(name: str, data: bytes, limits: AttachmentLimits, ocr: OcrOptions | None) -> dict:
    parsed = parse_document(data, name, max_bytes=limits.max_file_bytes, max_pages=limits.max_pages, ocr=ocr)
    text = PAGE_BREAK.join(page.text.replace(PAGE_BREAK, "\n") for page in parsed.pages)
    if len(text) > limits.max_chars:
        raise AttachmentError(f"{parsed.name} holds {len(text):,} characters of text; a file in a message may hold "
                              f"{limits.max_chars:,}. Add it to a collection in Document Q&A and ask there.")
    return {"id": _sha(parsed.name, text)[:16], "name": parsed.name, "format": parsed.format,
            "pages": parsed.page_count, "bytes": len(data), "chars": len(text), "text": text}


def _sha(name: str, text: str) -> str:
    return hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()


def _parsed(attachment: dict) -> ParsedDocument:
    texts = str(attachment.get("text") or "").split(PAGE_BREAK)
    fmt = str(attachment.get("format") or "txt")
    paged = fmt in PAGED_FORMATS and attachment.get("pages") is not None
    return ParsedDocument(str(attachment["name"]), fmt, [Page(n if paged else None, t) for n, t in enumerate(texts, 1)])


def _page_sources(attachment: dict) -> list[Hit]:
    """One source per page with text (the whole text of a file without pages)."""
    parsed = _parsed(attachment)
    fence = "```"
    out = []
    for n, page in enumerate(parsed.pages):
        if not page.text.strip():
            continue
        text = page.text.strip()
        if parsed.format == "code":  # code keeps its lines: a fenced block after the source label
            lang = parsed.name.rsplit(".", 1)[-1].lower()
            while fence in text:
                fence += "`"
            text = f"\n{fence}{lang}\n{text}\n{fence}"
        out.append(Hit(str(attachment.get("id") or ""), parsed.name, page.number, text, 1.0, n))
    return out


class ChatAttachments:
    """The prompt side of files in Chat; ``index`` (a ``DocumentStore``) holds one collection per conversation."""

    def __init__(self, index=None, limits: AttachmentLimits = AttachmentLimits(),  # noqa: B008
                 ocr: OcrOptions | None = OcrOptions()) -> None:  # noqa: B008
        self.index = index
        self.limits = limits
        self.ocr = ocr

    def read(self, files: Sequence[tuple[str, bytes]], already: int = 0) -> tuple[list[dict], list[str]]:
        return read_attachments(files, self.limits, self.ocr, already)

    def prepare(self, engine, history: Sequence[dict], params, conversation: str, system_prompt: str = "",
                budget: int | None = None) -> AttachedPrompt:
        """The branch ``history`` (ending with the question) with its files in it (module docstring)."""
        history = [dict(m) for m in history]
        if not has_attachments(history):
            return AttachedPrompt(history)
        count = engine.count_tokens
        budget = engine.prompt_budget(params) if budget is None else budget
        whole = self._whole(history)
        fixed = count(system_prompt) + _OVERHEAD if system_prompt else 0
        if fixed + sum(count(str(m.get("content") or "")) + _OVERHEAD for m in whole.history) <= budget:
            whole.conversation = conversation
            return whole
        passages = self._passages(history, count, budget - fixed, conversation)
        passages.conversation = conversation
        return passages

    def _whole(self, history: list[dict]) -> AttachedPrompt:
        sources: list[Hit] = []
        out = []
        for message in history:
            files = message.get("attachments") if message.get("role") == "user" else None
            if files:
                given = [hit for attachment in files for hit in _page_sources(attachment)]
                language = detect_language(message["content"])
                message = {**message, "content": sources_message(message["content"], given, language, len(sources) + 1)}
                sources += given
            out.append(message)
        return AttachedPrompt(out, sources, "whole")

    def _passages(self, history: list[dict], count, budget: int, conversation: str) -> AttachedPrompt:
        question = history[-1]["content"] if history and history[-1]["role"] == "user" else ""
        language = detect_language(question)
        files = [a for m in history if m.get("role") == "user" for a in m.get("attachments") or []]
        out = [self._noted(m, language) if m.get("attachments") else m for m in history[:-1]]
        rest = sum(count(str(m.get("content") or "")) + _OVERHEAD for m in out)
        # A long conversation still leaves the passages a third of the budget: the engine trims the oldest turns.
        room = max(0, min(PASSAGE_TOKENS, max(budget - rest - count(question) - 3 * _OVERHEAD, budget // 3)))
        hits = self._retrieve(conversation, files, question)
        embedder = getattr(self.index, "embedder", None)
        given = select_passages(question, hits, count, room, embedder=embedder,
                                label_tokens=lambda hit: count(format_source(len(hits), hit, language, text="")))
        out.append({**history[-1], "content": sources_message(question, given, language)})
        return AttachedPrompt(out, given, "passages")

    @staticmethod
    def _noted(message: dict, language: str) -> dict:
        names = ", ".join(str(a.get("name")) for a in message["attachments"])
        return {**message, "content": f"{_ATTACHED[language]}{names}\n\n{message['content']}"}

    def _retrieve(self, conversation: str, files: list[dict], question: str) -> list[Hit]:
        """The hits of the branch's files for ``question``: from the conversation's index, or all pages."""
        if self.index is None:
            return [hit for attachment in files for hit in _page_sources(attachment)]
        name = collection_name(conversation)
        self.index.create_collection(name, exist_ok=True)
        known = {d.id for d in self.index.list_documents(name)}
        todo = {a["id"]: a for a in files if a.get("id") not in known}
        if todo:
            result = self.index.add_parsed(name, [(_parsed(a), _sha(a["name"], a.get("text") or "")) for a in
                                                  todo.values()])
            if result.errors:
                raise AttachmentError(f"{result.errors[0].name} could not be searched: {result.errors[0].error}")
        wanted = {_sha(a["name"], a.get("text") or "")[:16] for a in files}
        hits = [h for h in self.index.search(name, question, top_k=_CANDIDATES, min_score=0)
                if h.document_id in wanted][:_KEPT_HITS]
        return self.index.expand(name, hits, self.index.config.neighbour_chunks)

    def forget(self, conversation: str) -> None:
        """Delete a conversation's index (when the conversation is deleted)."""
        if self.index is None:
            return
        try:
            self.index.delete_collection(collection_name(conversation))
        except CollectionNotFound:
            pass  # never needed one: its files fitted whole, or it had none

    @staticmethod
    def cite(answer: str, prepared: AttachedPrompt | None, question: str = "") -> tuple[str, list[tuple[int, Hit]]]:
        """``(the answer with its citations checked, the cited sources as (number, hit))``: a citation of a
        source the answer does not quote moves to the one it quotes (``rag.citations``), and an uncited
        answer that quotes a source gets its number."""
        if prepared is None or not prepared.sources:
            return answer, []
        sources = prepared.sources
        moved = misplaced_citation(answer, sources, question)
        if moved is not None:
            answer = _CITED.sub(lambda m: f"[{moved}]" if 1 <= int(m.group(1)) <= len(sources) else m.group(0),
                                answer)
            answer = _REPEATED.sub(r"\1", answer)
        else:
            number = missing_citation(answer, sources, question)
            answer += f" [{number}]" if number is not None else ""
        numbers = sorted({int(n) for n in _CITED.findall(answer) if 1 <= int(n) <= len(sources)})
        return answer, [(n, sources[n - 1]) for n in numbers]


def collection_name(conversation: str) -> str:
    """The index collection of a conversation (its id; a browser tab's key without a saved one)."""
    return (_NAME.sub("-", str(conversation)) or "chat")[:64]
