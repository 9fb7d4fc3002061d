"""Background ingestion: uploads queued as jobs, run one at a time, with progress a client can poll.

``IngestJobs.submit`` spools the files to ``<data_dir>/jobs/<id>/`` and returns at once; one
worker thread runs jobs in order through ``DocumentStore.add_files``, whose progress callback
(parsing, OCR, embedding) becomes the job's ``progress``. Jobs live in SQLite
(``<data_dir>/jobs.sqlite3``), every change in its own transaction, so a job survives a reload of
the page and is listed again. A document becomes searchable only when fully indexed (the store
writes it ``pending``, then ``ready``), so a job cut short by a crash or restart leaves its
collection as it was; on start-up such jobs are marked failed and their spooled files removed.

Jobs belong to the owner who submitted them: another owner's id is "not found". The owner may
cancel a queued or running job (``cancel``): it ends at its next progress step, before anything
is written, and is marked failed with ``CANCEL_MESSAGE``; once the store has begun writing (the
last few per cent), the job finishes instead.

``submit_task`` runs other indexing work on the same worker as a job of its own (a folder-sync
pass, ``assist.sync``): same progress, cancelling and restart rules, its own documents/errors.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from assist.errors import AssistError, JobNotFound, TooManyJobs
from rag.errors import RagError
from rag.store import AddResult, FileError

__all__ = ["IngestJob", "IngestJobs", "RESTART_MESSAGE", "CANCEL_MESSAGE"]

log = logging.getLogger(__name__)

RESTART_MESSAGE = "The server restarted before this upload was indexed; nothing was added. Upload it again."
STOP_MESSAGE = "The server is shutting down; this upload was not indexed. Upload it again after the restart."
CANCEL_MESSAGE = "Cancelled: nothing from this upload was added."
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    collection TEXT NOT NULL,
    files TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    documents TEXT NOT NULL DEFAULT '[]',
    errors TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs(owner, created_at);
"""
_ACTIVE = "('queued', 'running')"  # SQL: the states of a job that is not finished
_SAVE_EVERY_S = 0.25  # progress is written at most this often (the final state always)
_KEEP_FINISHED = 200  # finished jobs kept per owner; older ones are forgotten
# submit_task: task(progress) -> (status "done"|"failed", message, documents [dict], errors [FileError | dict])
Task = Callable[[Callable[[float, str], None]], tuple[str, str, list, list]]


@dataclass(frozen=True)
class IngestJob:
    id: str
    owner: str
    collection: str
    files: list[str]
    status: str  # queued | running | done | failed
    progress: float
    message: str
    documents: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    created_at: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "progress": round(self.progress, 4),
                "message": self.message, "collection": self.collection, "files": self.files,
                "documents": self.documents, "errors": self.errors, "created_at": self.created_at}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class _Stopping(Exception):
    """Raised from the progress callback to end a running job when the server stops (not a
    ``RagError``, so the store does not treat it as one bad file and go on with the next)."""


class IngestJobs:
    """The job registry and its worker. ``close()`` ends the running job before its final write."""

    def __init__(self, store, data_dir: Path, max_queued: int = 64) -> None:
        self.store = store
        self.spool = Path(data_dir) / "jobs"
        self.max_queued = max_queued
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, shared by the request threads and the worker
        # Default isolation: each write runs in a transaction committed by ``with self._conn``.
        self._conn = sqlite3.connect(Path(data_dir) / "jobs.sqlite3", check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._recover()
        self._closing = threading.Event()
        self._cancelled: set[str] = set()  # ids whose owner asked to stop them
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")

    def _recover(self) -> None:
        """Jobs another process left queued or running cannot resume: mark them failed."""
        with self._lock, self._conn:
            stale = self._conn.execute(f"SELECT id, files FROM jobs WHERE status IN {_ACTIVE}").fetchall()
            for job_id, files in stale:
                errors = [{"name": name, "error": RESTART_MESSAGE} for name in json.loads(files)]
                self._conn.execute(
                    "UPDATE jobs SET status = 'failed', message = ?, errors = ?, updated_at = ? WHERE id = ?",
                    (RESTART_MESSAGE, json.dumps(errors), _now(), job_id))
        if stale:
            log.warning("marked %d upload job(s) failed: the server stopped while they ran", len(stale))
        shutil.rmtree(self.spool, ignore_errors=True)  # spooled files of those jobs: no longer needed

    # ------------------------------------------------------------ requests

    def submit(self, owner: str, collection: str, files: Sequence[tuple[str, bytes]],
               early_errors: Sequence[FileError] = ()) -> IngestJob:
        """Queue ``files`` for ``collection``; ``early_errors`` (files refused while reading the
        request) are reported with the job's own errors."""
        with self._lock:
            queued = self._conn.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN {_ACTIVE}").fetchone()[0]
        if queued >= self.max_queued:
            raise TooManyJobs(f"{queued} uploads are already waiting to be indexed; try again when some are done.")
        job_id = uuid.uuid4().hex
        directory = self.spool / job_id
        directory.mkdir(parents=True)
        for n, (_, data) in enumerate(files):
            (directory / str(n)).write_bytes(data)
        names = [name for name, _ in files]
        now = _now()
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO jobs (id, owner, collection, files, status, progress, message, errors, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'queued', 0, 'Waiting', ?, ?, ?)",
                (job_id, owner, collection, json.dumps(names), json.dumps([e.to_dict() for e in early_errors]),
                 now, now))
        self._pool.submit(self._run, job_id, collection, names, list(early_errors))
        return self.get(job_id, owner)

    def get(self, job_id: str, owner: str) -> IngestJob:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, owner, collection, files, status, progress, message, documents, errors, created_at "
                "FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)).fetchone()
        if row is None:
            raise JobNotFound(f"There is no upload job {job_id!r}; it may have been from another user or "
                              "cleaned up.")
        return _job(row)

    def list(self, owner: str, active_only: bool = False, collection: str | None = None) -> list[IngestJob]:
        """The owner's jobs, oldest first (``active_only``: queued and running ones)."""
        sql = ("SELECT id, owner, collection, files, status, progress, message, documents, errors, created_at "
               "FROM jobs WHERE owner = ?")
        args: list = [owner]
        if active_only:
            sql += f" AND status IN {_ACTIVE}"
        if collection is not None:
            sql += " AND collection = ?"
            args.append(collection)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created_at", args).fetchall()
        return [_job(r) for r in rows]

    def cancel(self, job_id: str, owner: str, wait_s: float = 5.0) -> IngestJob:
        """Stop the owner's job if it is queued or running; the job as it stands after (up to
        ``wait_s`` for a running one to reach its next progress step). A finished job is left as it is."""
        job = self.get(job_id, owner)  # another owner's job: not found
        if job.status not in ("queued", "running"):
            return job
        with self._lock:
            self._cancelled.add(job_id)
        deadline = time.monotonic() + wait_s
        while job.status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = self.get(job_id, owner)
        return job

    def close(self) -> None:
        """Stop: the running job ends before its final write (the collection stays as it was),
        queued ones are not started; both are marked failed."""
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._recover()
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ worker

    def _update(self, job_id: str, **values) -> None:
        values["updated_at"] = _now()
        columns = ", ".join(f"{k} = ?" for k in values)
        with self._lock, self._conn:
            # A job already marked failed (by a newer process that recovered) is never revived.
            self._conn.execute(f"UPDATE jobs SET {columns} WHERE id = ? AND status IN {_ACTIVE}",
                               [*values.values(), job_id])

    def _progress(self, job_id: str):
        """The job's progress callback: saved now and then; raises ``_Stopping`` once the job is
        cancelled or the server stops (before 1.0, which comes after the final write)."""
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            if fraction < 1.0:  # 1.0 comes after the final write
                if self._closing.is_set():
                    raise _Stopping(STOP_MESSAGE)
                if job_id in self._cancelled:
                    raise _Stopping(CANCEL_MESSAGE)
            now = time.monotonic()
            if now - last[0] >= _SAVE_EVERY_S:
                last[0] = now
                self._update(job_id, progress=min(max(fraction, 0.0), 0.999), message=message)

        return progress

    def submit_task(self, owner: str, collection: str, label: str, task: Task) -> IngestJob:
        """Queue other indexing work (a folder-sync pass) as a job of ``owner`` on the same worker:
        ``task(progress)`` returns ``(status, message, documents, errors)``; a ``progress`` call
        raises once the job is cancelled or the server stops (let it pass)."""
        job_id, now = uuid.uuid4().hex, _now()
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO jobs (id, owner, collection, files, status, progress, message, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'queued', 0, 'Waiting', ?, ?)",
                (job_id, owner, collection, json.dumps([label]), now, now))
        self._pool.submit(self._run_task, job_id, task)
        return self.get(job_id, owner)

    def _run_task(self, job_id: str, task: Task) -> None:
        try:
            if job_id in self._cancelled:
                raise _Stopping(CANCEL_MESSAGE)
            self._update(job_id, status="running", message="Starting")
            status, message, documents, errors = task(self._progress(job_id))
        except (RagError, AssistError, _Stopping) as exc:
            status, message, documents, errors = "failed", str(exc), [], []
        except Exception as exc:  # a bug: recorded on the job and logged in full
            log.exception("job %s failed", job_id)
            status, message, documents, errors = "failed", f"The job failed unexpectedly: {exc}", [], []
        finally:
            with self._lock:
                self._cancelled.discard(job_id)
        self._update(job_id, status=status, progress=1.0, message=message, documents=json.dumps(documents),
                     errors=json.dumps([e.to_dict() if isinstance(e, FileError) else e for e in errors]))
        self._forget_old()

    def _run(self, job_id: str, collection: str, names: list[str], early: list[FileError]) -> None:
        directory = self.spool / job_id
        before: set[str] = set()
        progress = self._progress(job_id)
        try:
            if job_id in self._cancelled:  # cancelled while it waited: never started
                raise _Stopping(CANCEL_MESSAGE)
            self._update(job_id, status="running", message="Starting")
            files = [(name, (directory / str(n)).read_bytes()) for n, name in enumerate(names)]
            before = {d.id for d in self.store.list_documents(collection)}
            result = self.store.add_files(collection, files, progress=progress)
        except (RagError, _Stopping) as exc:  # the whole upload refused (collection deleted …) or stopped
            result = AddResult(errors=[FileError(name, str(exc)) for name in names])
        except Exception as exc:  # a bug: recorded on the job (the client sees it) and logged in full
            log.exception("upload job %s failed", job_id)
            result = AddResult(errors=[FileError(name, f"Indexing failed unexpectedly: {exc}") for name in names])
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            with self._lock:
                self._cancelled.discard(job_id)
        errors = [*result.errors, *early]
        # "existing": the same bytes were indexed before this job (the store then reports that document).
        documents = [{**d.to_dict(), "existing": d.id in before} for d in result.documents]
        status = "done" if result.documents or not errors else "failed"
        message = (f"Added {len(result.documents)} document(s)" if status == "done"
                   else errors[0].error if len(errors) == 1 else f"{len(errors)} file(s) could not be added")
        self._update(job_id, status=status, progress=1.0, message=message,
                     documents=json.dumps(documents),
                     errors=json.dumps([e.to_dict() for e in errors]))
        self._forget_old()

    def _forget_old(self) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                f"DELETE FROM jobs WHERE status NOT IN {_ACTIVE} AND id IN (SELECT id FROM ("
                "SELECT id, ROW_NUMBER() OVER (PARTITION BY owner ORDER BY created_at DESC) AS n FROM jobs "
                f"WHERE status NOT IN {_ACTIVE}) WHERE n > ?)", (_KEEP_FINISHED,))


def _job(row) -> IngestJob:
    return IngestJob(id=row[0], owner=row[1], collection=row[2], files=json.loads(row[3]), status=row[4],
                     progress=float(row[5]), message=row[6], documents=json.loads(row[7]),
                     errors=json.loads(row[8]), created_at=row[9])
