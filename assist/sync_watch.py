"""File-system events for folder sync, through ``watchdog`` (inotify, FSEvents, ReadDirectoryChangesW).

One observer thread watches every followed folder (recursively); any change but our own reads
(``opened``, ``closed_no_write``) calls ``on_change(storage)``, which debounces and starts a
pass. Where events are unavailable (no inotify, watch limits reached) that is logged and the
timer alone keeps the folder in step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["FolderWatcher"]

log = logging.getLogger(__name__)
_IGNORED_EVENTS = ("opened", "closed_no_write")  # a pass reading the files must not start another


class FolderWatcher:
    def __init__(self, on_change: Callable[[str], None]) -> None:
        self.on_change = on_change
        self._watches: dict[str, tuple] = {}  # storage -> (watch, handler)
        self._observer = None
        try:
            from watchdog.observers import Observer

            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        except Exception as exc:  # no inotify here, limits reached …
            log.warning("folder sync: file-system events unavailable (%s); passes run on the timer only", exc)
            self._observer = None

    def watching(self, storage: str) -> bool:
        return storage in self._watches

    def watch(self, storage: str, folder: str) -> None:
        if self._observer is None:
            return
        from watchdog.events import FileSystemEventHandler

        on_change = self.on_change

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type not in _IGNORED_EVENTS:
                    on_change(storage)

        self.unwatch(storage)
        try:
            handler = _Handler()
            self._watches[storage] = (self._observer.schedule(handler, folder, recursive=True), handler)
        except Exception as exc:  # e.g. too many inotify watches: this folder is kept in step by the timer
            log.warning("folder sync: cannot watch %s (%s); its passes run on the timer only", folder, exc)

    def unwatch(self, storage: str) -> None:
        entry = self._watches.pop(storage, None)
        if entry is not None and self._observer is not None:
            try:
                self._observer.remove_handler_for_watch(entry[1], entry[0])
            except (KeyError, ValueError):
                pass

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
