"""Collections of documents on disk, and the operations the UI and HTTP API call.

Layout: ``<data_dir>/collections/<name>/meta.sqlite3`` (documents and chunks, see
``rag.metadata``) and ``<name>/index/`` (vectors, BM25 tokens, FAISS; see ``rag.index``).
The collection ``default`` always exists and cannot be deleted.

Uploads are processed file by file: parsing, chunking, embedding and BM25 tokenizing run
outside the collection lock (searches keep working meanwhile); only the final write — metadata
as pending, index add + save, metadata ready — holds it. A file that fails becomes a
``FileError`` and the others still go in; a failure while writing rolls the batch back, so the
index and the existing documents are never left half-changed. When a collection is opened, the
index is reconciled with the metadata (``rag.reconcile``); the work before the write is ``rag.additions``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.additions import AddResult, FileError, Prepared, prepare_file, prepare_parsed
from rag.chunking import document_title
from rag.config import RagConfig
from rag.document_files import forget, original_path, save_original
from rag.embedding import Embedder, Progress
from rag.errors import (
    CollectionExists,
    CollectionNotFound,
    DocumentNotFound,
    InvalidName,
    PageNotFound,
    RagError,
    TooManyFiles,
)
from rag.index import CollectionIndex
from rag.metadata import DocumentInfo, MetadataDB
from rag.parsing import ParsedDocument, sanitize_name
from rag.preview import PageSource
from rag.reconcile import reconcile
from rag.rerank import Reranker
from rag.retrieval import Hit, detect_language, hybrid_search, join_overlapping, rerank_hits
from rag.tokenizer import tokenize

__all__ = ["AddResult", "DocumentInfo", "DocumentStore", "FileError", "DEFAULT_COLLECTION", "check_collection_name",
           "rerank_hits"]  # rerank_hits re-exported for callers

DEFAULT_COLLECTION = "default"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class _Collection:
    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.lock = threading.RLock()
        self.db = MetadataDB(directory / "meta.sqlite3")
        self.index: CollectionIndex | None = None  # loaded on first search/add/delete
        self.deleted = False


class DocumentStore:
    """Thread-safe facade over all collections. Nothing heavy happens in the constructor."""

    def __init__(self, config: RagConfig, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.config = config
        self.embedder = embedder
        self.reranker = reranker  # optional second stage over the fused shortlist (rag.rerank)
        self.root = config.data_dir / "collections"
        self._lock = threading.Lock()
        self._open: dict[str, _Collection] = {}
        self.create_collection(DEFAULT_COLLECTION, exist_ok=True)
        for leftover in self.root.glob(".deleted-*"):  # a delete interrupted by a crash
            shutil.rmtree(leftover, ignore_errors=True)

    # ------------------------------------------------------------ collections

    def list_collections(self) -> list[str]:
        """Collection names, ``default`` first, then alphabetical."""
        names = sorted(p.name for p in self.root.iterdir() if (p / "meta.sqlite3").is_file() and _NAME.fullmatch(p.name))
        return sorted(names, key=lambda n: (n != DEFAULT_COLLECTION, n))

    def create_collection(self, name: str, exist_ok: bool = False) -> str:
        check_collection_name(name)
        with self._lock:
            directory = self.root / name
            if (directory / "meta.sqlite3").is_file():
                if not exist_ok:
                    raise CollectionExists(f"A collection named {name!r} already exists.")
                return name
            directory.mkdir(parents=True, exist_ok=True)
            self._open[name] = _Collection(name, directory)
            return name

    def delete_collection(self, name: str) -> None:
        check_collection_name(name)
        if name == DEFAULT_COLLECTION:
            raise InvalidName("The default collection cannot be deleted.")
        col = self._get(name)
        # Collection lock first, store lock second: the same order as everywhere else.
        with col.lock, self._lock:
            col.deleted = True
            col.db.close()
            self._open.pop(name, None)
            # Rename first (atomic) so a half-finished delete never looks like a collection.
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
            col.directory.rename(trash)
            shutil.rmtree(trash, ignore_errors=False)

    def _get(self, name: str) -> _Collection:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise CollectionNotFound(f"There is no collection named {name!r}.")
        with self._lock:
            col = self._open.get(name)
            if col is None:
                directory = self.root / name
                if not (directory / "meta.sqlite3").is_file():
                    raise CollectionNotFound(f"There is no collection named {name!r}.")
                col = self._open[name] = _Collection(name, directory)
            return col

    def _index(self, col: _Collection) -> CollectionIndex:
        """The collection's index, loaded and reconciled with the metadata (lock held)."""
        if col.deleted:
            raise CollectionNotFound(f"The collection {col.name!r} was deleted.")
        if col.index is not None:
            return col.index
        index = CollectionIndex.load(col.directory / "index", self.embedder.dim, embedder=self.embedder.name,
                                     ann_threshold=self.config.ann_threshold)
        reconcile(col.name, col.directory, col.db, index, self.embedder, self.config.embed_batch_size)
        col.index = index
        return index

    # ------------------------------------------------------------ documents

    def list_documents(self, collection: str) -> list[DocumentInfo]:
        col = self._get(collection)
        with col.lock:
            return col.db.list_documents()

    def get_document(self, collection: str, document_id: str) -> DocumentInfo:
        col = self._get(collection)
        with col.lock:
            info = col.db.get_document(document_id)
        if info is None:
            raise DocumentNotFound(f"There is no document {document_id!r} in collection {collection!r}.")
        return info

    def delete_document(self, collection: str, document_id: str) -> None:
        col = self._get(collection)
        with col.lock:
            if col.db.get_document(document_id) is None:
                raise DocumentNotFound(f"There is no document {document_id!r} in collection {collection!r}.")
            index = self._index(col)
            # Metadata first: if we crash before the index is saved, the stale vectors are
            # invisible to search (no metadata row) and removed on the next open.
            chunk_ids = col.db.delete_documents([document_id])
            index.remove(chunk_ids)
            index.save()
            forget(col.directory, [document_id])

    def rename_document(self, collection: str, document_id: str, name: str) -> DocumentInfo:
        """The document under a new source name (a renamed file): nothing is re-embedded (the
        vectors keep the old title; the text shown starts with the new one)."""
        col = self._get(collection)
        with col.lock:
            info = col.db.get_document(document_id)
            titles = (document_title(info.name), document_title(sanitize_name(name))) if info else None
            if not col.db.rename_document(document_id, sanitize_name(name), titles):
                raise DocumentNotFound(f"There is no document {document_id!r} in collection {collection!r}.")
            return col.db.get_document(document_id)

    def add_files(self, collection: str, files: Sequence[tuple[str, bytes]],
                  progress: Progress | None = None) -> AddResult:
        """Parse, chunk, embed and index files; per-file errors are reported, not raised."""
        col = self._get(collection)
        if len(files) > self.config.max_files_per_upload:
            raise TooManyFiles(f"{len(files)} files were sent at once; the limit is "
                               f"{self.config.max_files_per_upload}. Upload them in smaller groups.")
        report = progress or (lambda fraction, message: None)
        outcomes: list[DocumentInfo | FileError | Prepared] = []
        for i, (filename, data) in enumerate(files):
            lo, hi = 0.9 * i / len(files), 0.9 * (i + 1) / len(files)
            try:
                outcomes.append(self._prepare(col, filename, data, lambda f, m, lo=lo, hi=hi: report(lo + (hi - lo) * f, m)))
            except RagError as exc:
                outcomes.append(FileError(sanitize_name(filename), str(exc)))
        report(0.9, "Indexing")
        if any(isinstance(o, Prepared) for o in outcomes):
            with col.lock:
                outcomes = self._commit(col, outcomes)
        report(1.0, "Done")
        return AddResult(documents=[o for o in outcomes if isinstance(o, DocumentInfo)],
                         errors=[o for o in outcomes if isinstance(o, FileError)])

    def _prepare(self, col: _Collection, filename: str, data: bytes, report: Progress) -> DocumentInfo | Prepared:
        sha = hashlib.sha256(data).hexdigest()
        with col.lock:
            if col.deleted:
                raise CollectionNotFound(f"The collection {col.name!r} was deleted.")
            existing = col.db.find_by_sha(sha)
            if existing is not None and not original_path(col.directory, existing.id).is_file():
                save_original(col.directory, existing.id, data)  # indexed before previews: now it has pages
        if existing is not None:
            return existing  # same bytes already indexed: nothing to do
        return prepare_file(filename, data, sha, self.config, self.embedder, report)

    def add_parsed(self, collection: str, documents: Sequence[tuple[ParsedDocument, str]]) -> AddResult:
        """``add_files`` for documents read already: ``(parsed, sha256 hex)`` each, the id being its first
        16 characters (Chat attachments keep their text, not their bytes)."""
        col = self._get(collection)
        outcomes: list[DocumentInfo | FileError | Prepared] = []
        for parsed, sha in documents:
            with col.lock:
                existing = col.db.find_by_sha(sha)
            try:
                outcomes.append(existing or prepare_parsed(parsed, sha, self.config, self.embedder,
                                                           lambda fraction, message: None))
            except RagError as exc:
                outcomes.append(FileError(parsed.name, str(exc)))
        if any(isinstance(o, Prepared) for o in outcomes):
            with col.lock:
                outcomes = self._commit(col, outcomes)
        return AddResult(documents=[o for o in outcomes if isinstance(o, DocumentInfo)],
                         errors=[o for o in outcomes if isinstance(o, FileError)])

    def _commit(self, col: _Collection, outcomes: list) -> list[DocumentInfo | FileError]:
        index = self._index(col)
        todo: dict[str, Prepared] = {}
        for item in outcomes:
            if isinstance(item, Prepared) and col.db.find_by_sha(item.doc.sha256) is None:
                todo.setdefault(item.doc.sha256, item)  # identical files in one upload: index once
        infos, chunk_ids = col.db.insert_pending([p.doc for p in todo.values()])
        flat_ids = [cid for ids in chunk_ids for cid in ids]
        try:
            for info, prepared in zip(infos, todo.values(), strict=True):
                if prepared.original is not None:  # before "ready": a crash leaves a pending row to clean up
                    save_original(col.directory, info.id, prepared.original)
            if flat_ids:
                index.add(flat_ids, np.concatenate([p.vectors for p in todo.values()]),
                          [t for p in todo.values() for t in p.tokens])
                index.save()
            col.db.mark_ready([info.id for info in infos])
        except BaseException:
            index.remove(flat_ids)
            col.db.delete_documents([info.id for info in infos])
            forget(col.directory, [info.id for info in infos])
            raise
        by_sha = {info.sha256: info for info in infos}
        return [(by_sha.get(o.doc.sha256) or col.db.find_by_sha(o.doc.sha256)) if isinstance(o, Prepared) else o
                for o in outcomes]

    def page_source(self, collection: str, document_id: str, page: int | None = None,
                    chunk_id: int | None = None) -> PageSource:
        """What a preview of one page needs (``rag.preview``): the page is ``page``, or the page of
        ``chunk_id`` when ``page`` is None; ``chunk_id`` must be a passage of that page."""
        col = self._get(collection)
        with col.lock:
            info, fmt = col.db.get_document(document_id), col.db.document_format(document_id)
            if info is None or fmt is None:
                raise DocumentNotFound(f"There is no document {document_id!r} in collection {collection!r}.")
            if chunk_id is not None:
                found, chunk_page = col.db.chunk_page(document_id, chunk_id)
                if not found or (page is not None and info.pages is not None and chunk_page != page):
                    raise PageNotFound(f"Passage {chunk_id} is not on that page of {info.name}.")
                page = chunk_page if page is None else page
            if info.pages is None:
                page = None  # a file without pages is one page
            elif page is None or not 1 <= page <= info.pages:
                raise PageNotFound(f"{info.name} has {info.pages} page(s); there is no page {page}.")
            chunks = col.db.page_chunks(document_id, page)
        original = original_path(col.directory, document_id)
        return PageSource(info.id, info.name, fmt, info.pages, page, original if original.is_file() else None,
                          col.directory, chunks, chunk_id)

    # ------------------------------------------------------------ search

    def search(self, collection: str, query: str, top_k: int | None = None,
               min_score: float | None = None) -> list[Hit]:
        """Best chunks for ``query``; only hits scoring at least ``min_score`` (default: the
        configured relevance threshold; pass 0 to get the best ``top_k`` regardless).

        With a reranker the best ``rerank_candidates`` hybrid hits that pass the threshold are
        put in the reranker's order; ``Hit.score`` stays the hybrid score, so the threshold
        means the same with and without one."""
        col = self._get(collection)
        query = (query or "").strip()
        if not query:
            return []
        top_k = max(1, min(int(top_k or self.config.top_k), 100))
        threshold = self.config.relevance_threshold if min_score is None else min_score
        vector = self.embedder.embed([query], batch_size=1)[0]
        tokens = tokenize(query, query=True)
        dense_weight = self.config.dense_weight
        languages = getattr(self.embedder, "languages", None)
        if languages is not None and detect_language(query) not in languages and self.config.lexical_weight > 0:
            dense_weight = 0.0  # its cosine would be noise (see rag.retrieval's docstring)
        shortlist = max(top_k, self.config.rerank_candidates) if self.reranker is not None else top_k
        with col.lock:
            index = self._index(col)
            scored = hybrid_search(index, vector, tokens, top_k=shortlist, candidates=self.config.candidates,
                                   dense_weight=dense_weight, lexical_weight=self.config.lexical_weight,
                                   min_score=threshold)
            rows = col.db.chunks_by_ids([s.chunk_id for s in scored])
        hits = [Hit(*_shown(rows[s.chunk_id]), s.score, s.chunk_id, s.dense, s.lexical)
                for s in scored if s.chunk_id in rows]
        if self.reranker is None or len(hits) < 2:
            return hits[:top_k]
        return rerank_hits(self.reranker, query, hits)[:top_k]

    def expand(self, collection: str, hits: Sequence[Hit], neighbours: int = 1) -> list[Hit]:
        """``hits`` with their text widened by up to ``neighbours`` chunks before and after, from
        the same document and page (so the citation stays true), overlaps joined once. An answer
        often starts just before or runs on after the chunk that matched the question best."""
        if neighbours < 1 or not hits:
            return list(hits)
        col = self._get(collection)
        wanted = sorted({h.chunk_id + d for h in hits for d in range(-neighbours, neighbours + 1) if d})
        with col.lock:
            rows = col.db.chunks_by_ids(wanted)
        out = []
        for hit in hits:
            text = hit.text
            for step in (-1, 1):
                for d in range(1, neighbours + 1):
                    row = rows.get(hit.chunk_id + step * d)
                    if row is None or row[0] != hit.document_id or row[2] != hit.page:
                        break
                    shown = _shown(row)[3]
                    text = join_overlapping(shown, text, hit.text) if step < 0 else join_overlapping(text, shown, hit.text)
            out.append(dataclasses.replace(hit, text=text))
        return out

    def close(self) -> None:
        with self._lock:
            cols = list(self._open.values())
            self._open.clear()
        for col in cols:
            with col.lock:
                col.deleted = True
                col.db.close()


def _shown(row: tuple[str, str, int | None, str]) -> tuple[str, str, int | None, str]:
    """A chunk row as shown to people and the model: without the document-title prefix that
    ``chunk_titles`` put there for the retrievers (the source name already says it)."""
    document_id, source, page, text = row
    title = document_title(source)
    for prefix in (title + "\n", title + " > "):
        if title and text.startswith(prefix):
            return document_id, source, page, text[len(prefix):]
    return row


def check_collection_name(name: str) -> None:
    """``InvalidName`` unless ``name`` follows the naming rule (1-64 letters, digits, '-' or '_')."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidName(f"{name!r} is not a valid collection name: use 1-64 letters, digits, '-' or '_'.")
