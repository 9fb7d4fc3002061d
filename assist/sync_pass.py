"""One folder-sync pass: the folder's files compared with what was indexed from them, the difference applied.

A file is read only when it is new or its size or mtime changed; its SHA-256 then decides:
the same bytes at a new path whose old path is gone is a rename (the document keeps its id and
chunks, only its source name changes); new bytes at a known path are an update — the new version
is indexed first and the old version's chunks leave the index only after, so answers never lose
the document mid-pass; a path that is gone is a removal. A file that cannot be read is reported
with the reader's message and tried again only once its bytes change (a changed file that fails
keeps its old version searchable). A file that changes while it is being read is left for the
next pass (``deferred``): what is recorded is always the hash of the bytes that were indexed.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from assist.sync_state import FileRow, Source, SyncState
from rag.errors import DocumentNotFound
from rag.parsing import SUPPORTED_EXTENSIONS, sanitize_name

__all__ = ["PassReport", "run_pass", "scan_folder", "has_changes"]

Progress = Callable[[float, str], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class PassReport:
    folder: str
    started_at: str = field(default_factory=_now)
    finished_at: str = ""
    status: str = "running"  # running | done | failed
    message: str = ""
    files: int = 0  # supported files in the folder
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[dict] = field(default_factory=list)  # {"from", "to"}
    failed: list[dict] = field(default_factory=list)  # {"path", "error"}
    deferred: list[str] = field(default_factory=list)  # changed while read: the next pass takes them
    job: str | None = None

    def finish(self, status: str, message: str = "") -> PassReport:
        self.status, self.finished_at = status, _now()
        self.message = message or (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} "
                                   f"removed, {len(self.renamed)} renamed, {len(self.failed)} failed")
        return self

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in (
            "status", "message", "folder", "started_at", "finished_at", "files", "added", "updated", "removed",
            "renamed", "failed", "deferred", "job")}


def _hidden(name: str) -> bool:
    return name.startswith((".", "~$", "~")) or name.endswith(("~", ".tmp", ".swp"))  # editors' temp files


def scan_folder(folder: Path, root: Path | None = None) -> tuple[dict[str, tuple[int, int]], list[dict]]:
    """``{relative path: (mtime_ns, size)}`` of the supported files under ``folder`` (hidden ones
    and editors' temp files left out), and the files refused (links leading outside ``root``)."""
    found: dict[str, tuple[int, int]] = {}
    refused: list[dict] = []
    root = (root or folder).resolve()
    for directory, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in sorted(names):
            if _hidden(name) or Path(name).suffix.lower() not in SUPPORTED_EXTENSIONS:
                continue
            path = Path(directory) / name
            rel = path.relative_to(folder).as_posix()
            try:
                if path.is_symlink():
                    target = path.resolve()
                    if target != root and root not in target.parents:
                        refused.append({"path": rel, "error": f"{rel} is a link to {target}, outside the sync "
                                                              "root; it is not followed."})
                        continue
                st = path.stat()
            except OSError:
                continue  # gone (or unreadable) since it was listed: the next pass sees it as it is then
            if path.is_file():
                found[rel] = (st.st_mtime_ns, st.st_size)
    return found, refused


def has_changes(store, state: SyncState, source: Source, root: Path | None = None) -> bool:
    """Whether a pass would have anything to do (sizes and mtimes only; nothing is read): the timer
    and the watcher start a pass, a job, only then, so a quiet folder leaves no trail of empty jobs."""
    folder = Path(source.folder)
    if not folder.is_dir():  # reported once by a failed pass, not again at every tick
        return (state.last_pass(source.storage) or {}).get("status") != "failed"
    seen, _ = scan_folder(folder, root)
    known = state.files(source.storage)
    if set(seen) != set(known):
        return True
    present = {d.id for d in store.list_documents(source.storage)}
    return any((row.mtime_ns, row.size) != seen[rel] or (row.error is None and row.document_id not in present)
               for rel, row in known.items())


def _read_stable(path: Path) -> tuple[bytes, tuple[int, int]] | None:
    """The file's bytes and the (mtime_ns, size) they belong to; None while it is being written."""
    before = path.stat()
    data = path.read_bytes()
    after = path.stat()
    stamp = (before.st_mtime_ns, before.st_size)
    if stamp != (after.st_mtime_ns, after.st_size) or len(data) != after.st_size:
        return None
    return data, stamp


def run_pass(store, state: SyncState, source: Source, progress: Progress, report: PassReport, *, max_bytes: int,
             root: Path | None = None) -> PassReport:
    """Bring ``source.storage`` in line with ``source.folder``, filling ``report`` with what changed.

    Raises what the store raises for the collection as a whole (deleted: ``CollectionNotFound``)
    and whatever ``progress`` raises to stop the pass; files finished before that stay recorded
    (and in ``report``)."""
    storage, folder = source.storage, Path(source.folder)
    if not folder.is_dir():
        return report.finish("failed", f"The folder {folder} is missing or cannot be read; nothing was changed "
                                       "in the collection.")
    progress(0.0, f"Scanning {folder}")
    seen, refused = scan_folder(folder, root)
    report.files, report.failed = len(seen), list(refused)
    known = state.files(storage)
    present = {d.id for d in store.list_documents(storage)}
    refs = Counter(row.document_id for row in known.values() if row.document_id)

    def indexed(row: FileRow | None) -> bool:  # its bytes are in the collection, or failed as they are
        return row is not None and (row.document_id in present or row.error is not None)

    todo: list[tuple[str, bytes, str, tuple[int, int]]] = []
    for rel, stamp in seen.items():
        row = known.get(rel)
        if row is not None and (row.mtime_ns, row.size) == stamp and indexed(row):
            if row.error:
                report.failed.append({"path": rel, "error": row.error})
            continue
        if stamp[1] > max_bytes:
            error = f"{rel} is larger than the {max_bytes // 1024**2} MB limit for one file."
            state.put_file(storage, FileRow(rel, row.document_id if row else None, None, *stamp, error))
            report.failed.append({"path": rel, "error": error})
            continue
        try:
            read = _read_stable(folder / rel)
        except OSError as exc:
            report.failed.append({"path": rel, "error": f"{rel} could not be read: {exc.strerror or exc}."})
            continue
        if read is None:
            report.deferred.append(rel)
            continue
        data, stamp = read
        sha = hashlib.sha256(data).hexdigest()
        if row is not None and row.sha256 == sha and indexed(row):  # touched, not changed
            state.put_file(storage, replace(row, mtime_ns=stamp[0], size=stamp[1]))
            if row.error:
                report.failed.append({"path": rel, "error": row.error})
            continue
        todo.append((rel, data, sha, stamp))

    # Renames: the same bytes at a new path, their old path gone.
    missing = {rel: row for rel, row in known.items() if rel not in seen}
    by_sha = {row.sha256: rel for rel, row in missing.items() if row.sha256 and indexed(row)}
    for item in list(todo):
        rel, _, sha, stamp = item
        old = by_sha.pop(sha, None) if rel not in known else None
        if old is None:
            continue
        row = missing.pop(old)
        state.move_file(storage, old, replace(row, path=rel, mtime_ns=stamp[0], size=stamp[1]))
        if row.document_id in present and sanitize_name(old) != sanitize_name(rel):
            store.rename_document(storage, row.document_id, sanitize_name(rel))
        report.renamed.append({"from": old, "to": rel})
        if row.error:
            report.failed.append({"path": rel, "error": row.error})
        todo.remove(item)

    # New and changed files: the new version in first, then the old one out.
    for n, (rel, data, sha, stamp) in enumerate(todo):
        lo, hi = 0.05 + 0.9 * n / len(todo), 0.05 + 0.9 * (n + 1) / len(todo)
        result = store.add_files(storage, [(sanitize_name(rel), data)],
                                 progress=lambda f, m, lo=lo, hi=hi: progress(lo + (hi - lo) * min(f, 0.99), m))
        row = known.get(rel)
        old_id = row.document_id if row is not None and row.document_id in present else None
        if result.errors:
            error = result.errors[0].error
            state.put_file(storage, FileRow(rel, old_id, sha, *stamp, error))
            report.failed.append({"path": rel, "error": error})
            continue
        document = result.documents[0]
        state.put_file(storage, FileRow(rel, document.id, sha, *stamp, None))
        refs[document.id] += 1
        present.add(document.id)
        (report.updated if old_id else report.added).append(rel)
        if old_id and old_id != document.id:
            refs[old_id] -= 1
            _forget(store, storage, old_id, refs)

    # Files gone from the folder.
    progress(0.96, "Removing deleted files")
    for rel, row in missing.items():
        state.drop_file(storage, rel)
        report.removed.append(rel)
        if row.document_id in present:
            refs[row.document_id] -= 1
            _forget(store, storage, row.document_id, refs)
    return report.finish("done")


def _forget(store, storage: str, document_id: str, refs: Counter) -> None:
    """Delete the document once no followed file refers to it (identical files share one)."""
    if refs[document_id] > 0:
        return
    try:
        store.delete_document(storage, document_id)
    except DocumentNotFound:
        pass  # deleted by hand meanwhile
