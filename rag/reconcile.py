"""Bringing a collection's index back in line with its metadata when it is opened: documents a
crash left pending are removed, stray kept originals deleted, vectors without a chunk dropped,
and chunks without vectors embedded again (all of them after a change of embedding model, which
``CollectionIndex.load`` reports as an empty index)."""

from __future__ import annotations

import logging
from pathlib import Path

from rag.document_files import forget, forget_others
from rag.embedding import Embedder
from rag.index import CollectionIndex
from rag.metadata import MetadataDB
from rag.tokenizer import tokenize

__all__ = ["reconcile"]

log = logging.getLogger(__name__)


def reconcile(name: str, directory: Path, db: MetadataDB, index: CollectionIndex, embedder: Embedder,
              batch_size: int) -> None:
    """Make ``index`` (and the kept originals under ``directory``) match ``db``; saves when it changed anything."""
    pending = db.pending_documents()
    if pending:
        log.warning("%s: removing %d document(s) left unfinished by a crash", name, len(pending))
        db.delete_documents(pending)
        forget(directory, pending)
    forget_others(directory, [d.id for d in db.list_documents()])
    wanted = db.ready_chunk_ids()
    present = set(index.ids.tolist())
    extra, missing = present - wanted, wanted - present
    index.remove(sorted(extra))
    if missing:
        log.warning("%s: embedding %d chunk(s) missing from the index", name, len(missing))
        rows = db.chunk_texts(sorted(missing))
        texts = [text for _, text in rows]
        vectors = embedder.embed(texts, batch_size=batch_size)
        index.add([cid for cid, _ in rows], vectors, [tokenize(t) for t in texts])
    if extra or missing or pending:
        index.save()
