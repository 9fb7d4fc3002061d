"""What the admin configures for folder sync: ``--sync-root``, the default interval, and ``[[sync]]`` tables.

    [[sync]]
    collection = "manuals"          # created for its owner if missing
    folder = "/srv/docs/manuals"    # must lie under --sync-root (symlinks resolved)
    interval_s = 300                # optional: seconds between timed passes (default --sync-interval-s)
    owner = "local"                 # optional: who owns the collection (default: the local admin)

Without ``--sync-root`` folder sync is off: nothing on the server's disk can be read into a
collection. ``check_folder`` is the one place that decides whether a folder may be followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assist.config_keys import unknown_key
from assist.errors import SyncError, SyncOff

__all__ = ["SyncConfig", "SyncEntry", "parse_sync_entries", "check_folder", "OFF_MESSAGE"]

OFF_MESSAGE = ("Folder sync is off on this server. Start it with --sync-root DIR (or DCU_CHAT_SYNC_ROOT, or "
               "sync_root in the config file); folders under DIR can then be followed.")
_KEYS = ("collection", "folder", "interval_s", "owner")


@dataclass(frozen=True)
class SyncEntry:
    """One ``[[sync]]`` table: ``collection`` (the owner's name for it) follows ``folder``."""

    collection: str
    folder: str
    interval_s: float | None = None
    owner: str | None = None


@dataclass(frozen=True)
class SyncConfig:
    root: Path | None = field(default=None, metadata={
        "option": "sync_root", "help": "folder sync: collections may follow folders under this directory "
        "(PUT /api/collections/{c}/source, [[sync]] tables); unset: folder sync is off"})
    interval_s: float = field(default=300.0, metadata={
        "option": "sync_interval_s", "help": "seconds between timed passes of a followed folder (default for "
        "each source; file-system events trigger passes sooner)"})
    events: bool = field(default=True, metadata={
        "option": "sync_events", "help": "watch followed folders for file-system events (watchdog) besides the timer"})
    debounce_s: float = 2.0  # quiet time after the last file-system event before a pass starts
    entries: tuple[SyncEntry, ...] = ()  # [[sync]] tables (config file only)

    def __post_init__(self) -> None:
        if self.root is not None and str(self.root).strip():
            object.__setattr__(self, "root", Path(self.root).expanduser())
        else:
            object.__setattr__(self, "root", None)
        if self.interval_s <= 0 or self.debounce_s < 0:
            raise SyncError(f"--sync-interval-s must be positive (got {self.interval_s}).")

    @property
    def enabled(self) -> bool:
        return self.root is not None


def check_folder(config: SyncConfig, folder: str | Path) -> Path:
    """``folder`` resolved (symlinks followed) if it is an existing folder under the sync root;
    ``SyncOff`` without a root, ``SyncError`` (400) with a sentence saying why otherwise."""
    if not config.enabled:
        raise SyncOff(OFF_MESSAGE)
    text = str(folder or "").strip()
    if not text:
        raise SyncError("Give the folder to follow, e.g. {\"folder\": \"/srv/docs/manuals\"}.")
    if "\x00" in text:
        raise SyncError("The folder name contains a NUL character.")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = config.root / path  # relative paths are read under the root
    root = config.root.resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise SyncError(f"The folder {text} is outside the sync root {config.root} (symlinks resolved: "
                        f"{resolved}); only folders under the sync root can be followed.")
    if not resolved.is_dir():
        raise SyncError(f"There is no folder {text} on the server (or it is not a folder).")
    return resolved


def parse_sync_entries(tables) -> tuple[SyncEntry, ...]:
    """``[[sync]]`` tables checked, with messages naming the table and the key."""
    if tables is None:
        return ()
    if not isinstance(tables, list):
        raise SyncError("sync must be a list of tables ([[sync]] sections) with a collection and a folder.")
    out = []
    for number, table in enumerate(tables, 1):
        where = f"[[sync]] #{number}"
        if not isinstance(table, dict):
            raise SyncError(f"{where} must be a table with a collection and a folder.")
        if (message := unknown_key(where, table, _KEYS)):
            raise SyncError(message)
        collection, folder = table.get("collection"), table.get("folder")
        if not isinstance(collection, str) or not collection.strip():
            raise SyncError(f"{where}: collection must be the name of a collection, e.g. collection = \"manuals\".")
        if not isinstance(folder, str) or not folder.strip():
            raise SyncError(f"{where}: folder must be a path, e.g. folder = \"/srv/docs/manuals\".")
        interval = table.get("interval_s")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float))
                                     or interval <= 0):
            raise SyncError(f"{where}: interval_s must be a positive number of seconds (got {interval!r}).")
        owner = table.get("owner")
        if owner is not None and (not isinstance(owner, str) or not owner.strip()):
            raise SyncError(f"{where}: owner must be a user name.")
        out.append(SyncEntry(collection.strip(), folder.strip(), float(interval) if interval else None,
                             owner.strip() if owner else None))
    return tuple(out)
