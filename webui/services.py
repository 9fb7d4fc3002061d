"""What the web layer is given to serve: built once in ``app.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: building Services must not import the heavy parts
    from assist.attachments import ChatAttachments
    from assist.audit import AuditLog
    from assist.collections import UserCollections
    from assist.identity.signin import Identity
    from assist.ingest_jobs import IngestJobs
    from assist.presets import PresetStore
    from assist.quotas import Quotas
    from assist.sandbox import SandboxConfig
    from assist.sessions import SessionStore
    from assist.sync import FolderSync
    from assist.tools.registry import ToolRegistry
    from assist.users import UserStore
    from engine.engine import Engine
    from engine.models import ModelRegistry
    from rag.config import RagConfig
    from rag.embedding import Embedder
    from rag.store import DocumentStore

__all__ = ["WebConfig", "Services"]

VERSION = "0.1.0"


@dataclass(frozen=True)
class WebConfig:
    host: str = field(default="127.0.0.1", metadata={
        "help": "address to bind; 0.0.0.0 exposes the server to the network"})
    port: int = field(default=7860, metadata={"help": "port to serve the UI and API on"})
    api_key: str | None = field(default=None, metadata={
        "help": "a shared key: 'Authorization: Bearer KEY' (or the sign-in page) opens every route", "secret": True})
    # --auth users (in memory; never written)
    auth: tuple[tuple[str, str], ...] = field(default=(), metadata={
        "help": "sign-in users kept in memory: user:password[,user2:password2] or a file with one "
            "user:password a line (prefer 'users add', which stores only hashes)", "secret": True})
    data_dir: Path = field(default=Path("data"), metadata={
        "help": "where collections, sessions and exports are stored"})
    # default: data_dir / "users.sqlite3"
    users_file: Path | None = field(default=None, metadata={
        "help": "users, API tokens and sign-ins (default: DATA_DIR/users.sqlite3); any user in it "
            "turns sign-in on"})
    # /metrics open even when sign-in is on (a scraper on a trusted network)
    metrics_public: bool = field(default=False, metadata={
        "help": "serve /metrics without sign-in (a Prometheus scraper on a trusted network)"})
    max_upload_bytes: int = 50 * 1024**2
    max_request_bytes: int = 8 * 1024**2
    concurrency: int = 8

    @property
    def session_exports_dir(self) -> Path:
        """Where the Chat sidebar writes a conversation's download files (one folder per conversation)."""
        return self.data_dir / "exports" / "sessions"

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

    # The served models. Alternatively ``engine``: one model loaded already (tests, embedding this app),
    # which becomes a registry of one. The web layer reads only ``models``.
    models: ModelRegistry | None = None
    engine: Engine | None = None  # or a test double with the same methods
    web: WebConfig = field(default_factory=WebConfig)
    store: DocumentStore | None = None
    embedder: Embedder | None = None
    sessions: SessionStore | None = None  # persistent chat sessions
    rag_config: RagConfig | None = None
    users: UserStore | None = None  # users, API tokens, sign-ins
    identity: Identity | None = None  # how passwords are checked: users file, LDAP / AD, OpenID provider
    audit: AuditLog | None = None
    jobs: IngestJobs | None = None  # background uploads
    version: str = VERSION
    collections: UserCollections | None = None  # the store behind ownership checks
    quotas: Quotas | None = None  # per-user limits and token usage (default: none, in memory)
    sandbox: SandboxConfig | None = None  # running users' code (--sandbox); None: off
    tools: ToolRegistry | None = None  # MCP servers and built-in tools for Chat and /api/chat; None: no tools
    presets: PresetStore | None = None  # Chat presets (default: beside the conversations, presets.sqlite3)
    attachments: ChatAttachments | None = None  # files in Chat messages (default: indexed beside the documents)
    sync: FolderSync | None = None  # collections that follow a folder (--sync-root); None: no folder sync

    def _groups_of(self, user: str) -> tuple[str, ...]:
        """The groups of ``user``'s last sign-in (group shares); looked up each time, users may be set later."""
        return self.users.groups_of(user) if self.users is not None else ()

    def __post_init__(self) -> None:
        if self.models is None and self.engine is not None:
            from engine.models import ModelRegistry

            self.models = ModelRegistry.of(self.engine)
        if self.presets is None and self.sessions is not None and str(self.sessions.path) != ":memory:":
            from assist.presets import PresetStore

            self.presets = PresetStore(self.sessions.path.parent / "presets.sqlite3")
        if self.attachments is None:
            self.attachments = _chat_attachments(self.store)
        hooks = getattr(self.sessions, "on_delete", None)
        if hooks is not None and self.attachments.forget not in hooks:
            hooks.append(self.attachments.forget)  # a conversation's file index goes with it
        if self.quotas is None:
            from assist.quotas import Quotas

            self.quotas = Quotas()  # no limits; usage counted in memory
        if self.collections is None and self.store is not None:
            # Tests and embedders that give only a store get the ownership table beside it.
            from assist.access import CollectionAccess
            from assist.collections import UserCollections

            access = CollectionAccess(self.store.config.data_dir / "access.sqlite3")
            self.collections = UserCollections(self.store, access, self.audit.record if self.audit else None,
                                               groups=self._groups_of)


def _chat_attachments(store):
    """Files in Chat read like documents (same OCR languages), their per-conversation indexes in
    ``<data>/chat-files`` with the documents' embedder; without a document store, no index."""
    from dataclasses import replace

    from assist.attachments import ChatAttachments
    from rag.ocr import OcrOptions

    if store is None:
        return ChatAttachments()
    from rag.store import DocumentStore

    config = store.config
    index = DocumentStore(replace(config, data_dir=config.data_dir / "chat-files"), store.embedder, store.reranker)
    ocr = OcrOptions(config.ocr_langs, config.ocr_dpi) if config.ocr_langs else None
    return ChatAttachments(index, ocr=ocr)
