"""What the web layer is given to serve: built once in ``app.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["WebConfig", "Services"]

VERSION = "0.1.0"


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    api_key: str | None = None
    auth: tuple[tuple[str, str], ...] = ()  # --auth users (in memory; never written)
    data_dir: Path = Path("data")
    users_file: Path | None = None  # default: data_dir / "users.sqlite3"
    metrics_public: bool = False  # /metrics open even when sign-in is on (a scraper on a trusted network)
    max_upload_bytes: int = 50 * 1024**2
    max_request_bytes: int = 8 * 1024**2
    concurrency: int = 8

    def __post_init__(self) -> None:
        from engine.errors import ConfigError

        if not 0 < self.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535 (got {self.port}).")
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        users_file = Path(self.users_file).expanduser() if self.users_file else self.data_dir / "users.sqlite3"
        object.__setattr__(self, "users_file", users_file)


@dataclass
class Services:
    """Long-lived objects shared by every tab and route. Optional parts may be None."""

    engine: object
    web: WebConfig = field(default_factory=WebConfig)
    store: object | None = None  # rag.store.DocumentStore
    embedder: object | None = None  # rag.embedding.Embedder
    sessions: object | None = None  # persistent chat sessions
    rag_config: object | None = None
    users: object | None = None  # assist.users.UserStore: users, API tokens, sign-ins
    audit: object | None = None  # assist.audit.AuditLog
    jobs: object | None = None  # assist.ingest_jobs.IngestJobs: background uploads
    version: str = VERSION
    collections: object | None = None  # assist.collections.UserCollections: the store behind ownership checks
    quotas: object | None = None  # assist.quotas.Quotas: per-user limits and token usage (default: none, in memory)

    def __post_init__(self) -> None:
        if self.quotas is None:
            from assist.quotas import Quotas

            self.quotas = Quotas()  # no limits; usage counted in memory
        if self.collections is None and self.store is not None:
            # Tests and embedders that give only a store get the ownership table beside it.
            from assist.access import CollectionAccess
            from assist.collections import UserCollections

            access = CollectionAccess(self.store.config.data_dir / "access.sqlite3")
            self.collections = UserCollections(self.store, access, self.audit.record if self.audit else None)
