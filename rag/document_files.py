"""Files kept beside a collection's metadata for previews: each document's original bytes and its
rendered pages.

Layout under the collection's directory: ``originals/<document id>`` (the uploaded bytes, so a
cited page can be drawn again) and ``previews/<document id>/<key>`` (rendered PNGs, OCR word
boxes). Every write goes to a temporary file in the same folder that is then renamed into place,
so a crash leaves the old file or none, never half of one. ``forget`` removes both with the
document; ``rag.store`` calls it when a document is deleted or left unfinished by a crash.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["save_original", "original_path", "cache_path", "write_atomic", "forget", "forget_others"]

_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_KEY = re.compile(r"[0-9A-Za-z_.-]{1,128}")


def _checked(document_id: str) -> str:
    if not _ID.fullmatch(document_id or ""):  # ids are hex digests: never a path
        raise ValueError(f"not a document id: {document_id!r}")
    return document_id


def original_path(directory: Path, document_id: str) -> Path:
    """Where the original bytes of ``document_id`` are (or would be) kept."""
    return Path(directory) / "originals" / _checked(document_id)


def cache_path(directory: Path, document_id: str, key: str) -> Path:
    """A cached preview file of ``document_id`` (``key`` e.g. ``p3-<hash>.png``)."""
    if not _KEY.fullmatch(key) or key.startswith("."):
        raise ValueError(f"not a cache key: {key!r}")
    return Path(directory) / "previews" / _checked(document_id) / key


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place (fsynced first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_original(directory: Path, document_id: str, data: bytes) -> None:
    write_atomic(original_path(directory, document_id), data)


def forget(directory: Path, document_ids: Iterable[str]) -> None:
    """Remove the originals and previews of these documents (missing ones are fine)."""
    for document_id in document_ids:
        original_path(directory, document_id).unlink(missing_ok=True)
        shutil.rmtree(Path(directory) / "previews" / _checked(document_id), ignore_errors=True)


def forget_others(directory: Path, keep: Iterable[str]) -> int:
    """Remove files of documents not in ``keep`` (an upload interrupted by a crash); returns how many."""
    keep = set(keep)
    gone = 0
    for folder in (Path(directory) / "originals", Path(directory) / "previews"):
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            if item.name in keep:
                continue
            if item.name.startswith(".tmp-") or _ID.fullmatch(item.name):
                shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
                gone += 1
    return gone
