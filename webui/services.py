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
    auth: tuple[tuple[str, str], ...] = ()
    data_dir: Path = Path("data")
    max_upload_bytes: int = 50 * 1024**2
    max_request_bytes: int = 8 * 1024**2
    concurrency: int = 8

    def __post_init__(self) -> None:
        from engine.errors import ConfigError

        if not 0 < self.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535 (got {self.port}).")
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())


@dataclass
class Services:
    """Long-lived objects shared by every tab and route. Optional parts may be None."""

    engine: object
    web: WebConfig = field(default_factory=WebConfig)
    store: object | None = None  # rag.store.DocumentStore
    embedder: object | None = None  # rag.embedding.Embedder
    sessions: object | None = None  # persistent chat sessions
    rag_config: object | None = None
    version: str = VERSION
