"""Collections that follow a folder on the server: sources, passes as background jobs, a timer and a watcher.

``FolderSync.follow`` makes a collection follow a folder under ``--sync-root`` (``check_folder``);
its owner is the collection's owner. Each pass (``assist.sync_pass``) runs as a job of that
owner on the upload worker (``IngestJobs.submit_task``), so ``GET /api/jobs/{id}`` shows its
progress and passes never embed alongside uploads on a small machine. Passes are started by a
timer (each source's ``interval_s``, and once at start-up to catch up with changes made while
the server was down) and by file-system events (``watchdog``), after ``debounce_s`` of quiet.
One pass per collection at a time: a request while one is queued joins it; while one runs, one
more follows it. Sources and per-file state live in ``SyncState`` (survive restarts); a source
whose collection was deleted is forgotten at its next pass.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from assist.errors import JobNotFound, NoSuchCollection, NotFollowing, SyncError
from assist.sessions import LOCAL_OWNER
from assist.sync_config import SyncConfig, check_folder
from assist.sync_pass import PassReport, has_changes, run_pass
from assist.sync_state import Source, SyncState
from assist.sync_watch import FolderWatcher
from rag.errors import CollectionNotFound

__all__ = ["FolderSync"]

log = logging.getLogger(__name__)


class FolderSync:
    def __init__(self, config: SyncConfig, store, collections, jobs, data_dir: Path, tick_s: float = 1.0) -> None:
        self.config = config
        self.store = store
        self.collections = collections
        self.jobs = jobs
        self.state = SyncState(Path(data_dir) / "sync.sqlite3")
        self.tick_s = tick_s
        self._lock = threading.RLock()
        self._queued: dict[str, str] = {}  # storage -> job id of a pass not started yet
        self._running: set[str] = set()
        self._again: set[str] = set()  # asked for while running: one more pass after it
        self._current: dict[str, str] = {}  # storage -> job id of the running pass
        self._last_end: dict[str, float] = {}  # storage -> time.monotonic() a pass ended
        self._pass_locks: dict[str, threading.Lock] = {}
        self._debounce: dict[str, threading.Timer] = {}
        self._watcher: FolderWatcher | None = None  # file-system events (config.events)
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        """Apply the ``[[sync]]`` tables, watch every followed folder, start the timer (first passes now)."""
        if not self.config.enabled:
            return
        listed = {self._follow(entry.owner or LOCAL_OWNER, entry.collection, entry.folder, entry.interval_s,
                               "config", start_pass=False) for entry in self.config.entries}
        for source in self.state.sources():  # a table taken out of the config file: no longer followed
            if source.origin == "config" and source.storage not in listed:
                log.info("folder sync: %s is no longer in the config; it stops following %s (documents kept)",
                         source.storage, source.folder)
                self.state.drop_source(source.storage)
        if self.config.events:
            self._watcher = FolderWatcher(lambda storage: self._later(storage, self.config.debounce_s))
            for source in self.state.sources():
                self._watch(source)
        self._timer = threading.Thread(target=self._tick, name="folder-sync", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        """No new passes (timer, watcher and requests end); a running one goes on until the jobs stop it."""
        self._stop.set()
        with self._lock:
            for timer in self._debounce.values():
                timer.cancel()
        if self._timer is not None:
            self._timer.join(timeout=5)
        if self._watcher is not None:
            self._watcher.close()

    def close(self) -> None:
        """``stop`` and close the state; stop the jobs (``IngestJobs.close``) in between when a pass may run."""
        self.stop()
        self.state.close()

    # -- requests ----------------------------------------------------------------------------

    def follow(self, user: str, ref: str, folder: str, interval_s: float | None = None) -> dict:
        """Make ``ref`` (created for ``user`` if missing) follow ``folder``; a first pass is queued.
        Who may ask (admins) is the web edge's business."""
        storage = self._follow(user, ref, folder, interval_s, "api", start_pass=True)
        return self.status(user, ref if ":" in ref else self.collections.label_of(user, storage))

    def _follow(self, user: str, ref: str, folder: str, interval_s: float | None, origin: str,
                start_pass: bool) -> str:
        path = check_folder(self.config, folder)
        if interval_s is not None and interval_s <= 0:
            raise SyncError(f"interval_s must be a positive number of seconds (got {interval_s}).")
        try:
            grant = self.collections.resolve(user, ref, "owner")
        except NoSuchCollection:
            if ":" in ref:
                raise
            grant = self.collections.create(user, ref)
        source = Source(grant.storage, grant.owner, str(path), float(interval_s or self.config.interval_s), origin,
                        datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.state.put_source(source)
        self._watch(source)
        if start_pass:
            self.request_pass(grant.storage)
        return grant.storage

    def unfollow(self, user: str, ref: str) -> dict:
        """Stop following (the documents stay); only the collection's owner may."""
        grant = self.collections.resolve(user, ref, "owner")
        if not self.state.drop_source(grant.storage):
            raise NotFollowing(f"The collection {grant.label(user)!r} does not follow a folder.")
        self._unwatch(grant.storage)
        return {"collection": grant.label(user), "following": False}

    def status(self, user: str, ref: str) -> dict:
        """What ``ref`` follows and its last pass, for anyone who may read the collection."""
        grant = self.collections.resolve(user, ref)
        source = self.state.source(grant.storage)
        if source is None:
            raise NotFollowing(f"The collection {grant.label(user)!r} does not follow a folder; an admin can make "
                               f"it follow one with PUT /api/collections/{grant.label(user)}/source.")
        with self._lock:
            state = ("running" if grant.storage in self._running else
                     "queued" if grant.storage in self._queued else "idle")
            job = self._queued.get(grant.storage) or self._current.get(grant.storage)
        if state == "queued" and not self._active(job, source.owner):  # cancelled before it started
            state, job = "idle", None
        return {"collection": grant.label(user), "owner": source.owner, "folder": source.folder,
                "interval_s": source.interval_s, "origin": source.origin, "since": source.created_at,
                "watching": self._watcher is not None and self._watcher.watching(grant.storage), "pass": {"state": state, "job": job},
                "files": len(self.state.files(grant.storage)), "last_pass": self.state.last_pass(grant.storage)}

    def request_pass(self, storage: str, force: bool = True) -> str | None:
        """Queue a pass of ``storage`` (joining one already queued); the job id, None if it follows nothing.
        ``force=False`` (the timer, the watcher): only when sizes or mtimes say something changed."""
        if not force and not self._changed(storage):
            return None
        with self._lock:
            if self._stop.is_set():
                return None
            if storage in self._running:
                self._again.add(storage)
                return self._current.get(storage)
            queued = self._queued.get(storage)
            source = self.state.source(storage)
            if queued is not None and source is not None and self._active(queued, source.owner):
                return queued
            if source is None:
                return None
            # The worker's first step waits for this lock, so it finds its job id in _queued.
            job = self.jobs.submit_task(source.owner, storage, source.folder,
                                        lambda progress: self._job(storage, progress))
            self._queued[storage] = job.id
            return job.id

    def run_pass(self, storage: str, progress=None, job_id: str | None = None) -> PassReport:
        """One pass now, in this thread (the jobs call it; so may tests); recorded as the last pass."""
        source = self.state.source(storage)
        if source is None:
            raise NotFollowing("This collection no longer follows a folder.")
        with self._lock:
            lock = self._pass_locks.setdefault(storage, threading.Lock())
        with lock:
            report = PassReport(source.folder, job=job_id)
            try:
                check_folder(self.config, source.folder)  # the root may have changed since
                run_pass(self.store, self.state, source, progress or (lambda fraction, message: None), report,
                         max_bytes=self.store.config.max_file_bytes, root=self.config.root)
            except CollectionNotFound:
                log.info("collection %s was deleted: it no longer follows %s", storage, source.folder)
                self.state.drop_source(storage)
                self._unwatch(storage)
                raise
            except SyncError as exc:
                report.finish("failed", str(exc))
            except BaseException as exc:
                report.finish("failed", f"The pass stopped: {exc}")
                self.state.set_last_pass(storage, report.to_dict())
                raise
            self.state.set_last_pass(storage, report.to_dict())
        return report

    # -- internals ---------------------------------------------------------------------------

    def _changed(self, storage: str) -> bool:
        """Whether ``storage``'s folder changed since its last pass; if not, the check is noted
        (``checked_at``) so the badge can say how fresh the collection is."""
        source = self.state.source(storage)
        if source is None:
            return False
        try:
            if has_changes(self.store, self.state, source, self.config.root):
                return True
        except CollectionNotFound:
            return True  # the pass finds that out and forgets the source
        last = self.state.last_pass(storage)
        if last is not None:
            last["checked_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.state.set_last_pass(storage, last)
        return False

    def _active(self, job_id: str, owner: str) -> bool:
        try:
            return self.jobs.get(job_id, owner).status in ("queued", "running")
        except JobNotFound:
            return False

    def _job(self, storage: str, progress):
        with self._lock:
            job_id = self._queued.pop(storage, None)
            self._running.add(storage)
            self._current[storage] = job_id
        report = None
        try:
            report = self.run_pass(storage, progress, job_id)
        finally:
            with self._lock:
                self._running.discard(storage)
                self._current.pop(storage, None)
                again = storage in self._again
                self._again.discard(storage)
                self._last_end[storage] = time.monotonic()
        if again:  # asked for while it ran: once more if anything changed meanwhile
            self.request_pass(storage, force=False)
        elif report is not None and report.deferred:  # files being written: look again shortly
            self._later(storage, max(self.config.debounce_s, 0.5))
        documents = ([{"name": p, "change": "added"} for p in report.added]
                     + [{"name": p, "change": "updated"} for p in report.updated]
                     + [{"name": r["to"], "change": "renamed", "from": r["from"]} for r in report.renamed]
                     + [{"name": p, "change": "removed"} for p in report.removed])
        errors = [{"name": f["path"], "error": f["error"]} for f in report.failed]
        return report.status, f"Folder sync: {report.message}", documents, errors

    def _later(self, storage: str, delay: float) -> None:
        """A pass of ``storage`` after ``delay`` seconds without another call (debounce)."""
        with self._lock:
            if self._stop.is_set():
                return
            old = self._debounce.get(storage)
            if old is not None:
                old.cancel()
            timer = self._debounce[storage] = threading.Timer(delay, self.request_pass, (storage, False))
            timer.daemon = True
            timer.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                now = time.monotonic()
                for source in self.state.sources():
                    with self._lock:
                        busy = source.storage in self._running or source.storage in self._queued
                        last = self._last_end.get(source.storage)
                    if not busy and (last is None or now - last >= source.interval_s):
                        self._last_end[source.storage] = now  # not again until this pass has ended
                        self.request_pass(source.storage, force=False)
            except Exception:  # the timer must outlive one bad tick (a closed database at shutdown …)
                if not self._stop.is_set():
                    log.exception("folder sync timer")

    def _watch(self, source: Source) -> None:
        if self._watcher is not None and not self._stop.is_set():
            self._watcher.watch(source.storage, source.folder)

    def _unwatch(self, storage: str) -> None:
        if self._watcher is not None:
            self._watcher.unwatch(storage)
