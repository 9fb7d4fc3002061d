"""dcu-chat entry point: CLI -> config objects -> services -> serve.

    python app.py [serve] [--model [NAME=]PATH_OR_ID[,key=value...]]... [--device auto|cpu|cuda|dcu] ...
    python app.py doctor
    python app.py config show
    python app.py users add|list|passwd|remove|token|tokens|revoke [NAME] [--role admin] [--label TEXT]

Settings come from, in increasing precedence: built-in defaults, a TOML file (``--config``),
environment variables ``DCU_CHAT_<NAME>`` (e.g. ``DCU_CHAT_API_KEY``), and command-line flags.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app_settings import (
    OPTIONS,
    build_config,
    build_configs,
    build_identity_config,
    build_models,
    build_quota_config,
    build_sandbox_config,
    build_sync_config,
    build_tools_config,
    parser,
    resolve_settings,
)

__all__ = ["main"]


def _rag_services(settings: dict[str, object], web):
    """The document store with the embedding model loaded (explicitly, with progress)."""
    from rag import DocumentStore, RagConfig, SentenceTransformerEmbedder
    from rag.ocr import OcrOptions, tesseract_status
    from rag.rerank import CrossEncoderReranker

    rag_config = build_config(RagConfig, settings, data_dir=web.data_dir)
    if rag_config.ocr_langs:  # say now, not at the first scanned upload, when OCR cannot work
        print(f"OCR: {tesseract_status(OcrOptions(rag_config.ocr_langs, rag_config.ocr_dpi))}", flush=True)
    embedder = SentenceTransformerEmbedder(rag_config.embedding_model, device=rag_config.embedding_device)
    print("Loading the embedding model…", flush=True)
    embedder.load(progress=lambda fraction, message: print(message, flush=True))
    reranker = None
    if rag_config.reranker_model:
        reranker = CrossEncoderReranker(rag_config.reranker_model, device=rag_config.reranker_device)
        reranker.load(progress=lambda fraction, message: print(message, flush=True))
    return DocumentStore(rag_config, embedder, reranker), embedder, rag_config


def exposure_warning(web, gate) -> str | None:
    """Serving beyond loopback with no sign-in at all: everything is open to the network."""
    if web.host in ("127.0.0.1", "localhost", "::1") or gate.enabled:
        return None
    return (f"WARNING: serving on {web.host} without --api-key or --auth (or --ldap-url, --oidc-issuer, or users "
            "from 'python app.py users add'): anyone on the network can use it.")


def serve(settings: dict[str, object]) -> int:
    from assist.access import CollectionAccess
    from assist.audit import AuditLog
    from assist.collections import UserCollections
    from assist.identity.signin import build_identity
    from assist.quotas import Quotas
    from assist.sessions import SessionStore
    from assist.users import UserStore
    from webui.auth import Gate
    from webui.server import serve as serve_web
    from webui.services import Services

    _, web = build_configs(settings)
    sync_config = build_sync_config(settings)  # a bad [[sync]] table fails fast, before the model loads
    from assist.sync_config import check_folder

    for entry in sync_config.entries:
        check_folder(sync_config, entry.folder)  # outside --sync-root, missing, or no --sync-root at all
    identity_config = build_identity_config(settings)  # a wrong --ldap-* / --oidc-* fails fast too
    models = build_models(settings)  # before the slow load: a wrong --model fails fast
    from assist.sandbox import sandbox_status

    sandbox = build_sandbox_config(settings)
    if sandbox.enabled:  # the admin's choice: say it plainly at start-up
        print(f"Code sandbox: {sandbox_status(sandbox)}", flush=True)
    from assist.tools.registry import ToolRegistry

    tools = ToolRegistry(build_tools_config(settings), sandbox)  # MCP servers start on first use
    if tools.enabled:
        print(f"Tools: {', '.join(tools.server_names())} (MCP servers start on first use).", flush=True)
    users = UserStore(web.users_file, memory_users=web.auth)
    identity = build_identity(users, identity_config)  # the directory / provider are reached on first use
    warning = exposure_warning(web, Gate(users, web.api_key, identity=identity))
    if warning:
        print(warning, file=sys.stderr)
    sessions = SessionStore(web.data_dir / "sessions.sqlite3")
    audit = AuditLog(web.data_dir / "audit.jsonl")
    quotas = Quotas(build_quota_config(settings), web.data_dir / "usage.sqlite3")
    access = CollectionAccess(web.data_dir / "access.sqlite3")
    if len(models.aliases) > 1:
        print(f"Models: {', '.join(models.aliases)} (the others load on first use).", flush=True)
    print(f"Loading the model {models.default}…", flush=True)
    engine = models.engine(progress=lambda message: print(message, flush=True))  # the default, now
    for note in engine.info.notes:
        print(f"note: {note}", flush=True)
    store, embedder, rag_config = _rag_services(settings, web)
    from assist.ingest_jobs import IngestJobs

    jobs = IngestJobs(store, web.data_dir)  # marks jobs a previous run left unfinished as failed
    collections = UserCollections(store, access, audit.record, groups=users.groups_of)
    from assist.sync import FolderSync

    sync = FolderSync(sync_config, store, collections, jobs, web.data_dir)
    try:
        sync.start()  # [[sync]] tables applied; a first pass of every followed folder is queued
        if sync_config.enabled:
            print(f"Folder sync: folders under {sync_config.root} may be followed "
                  f"({len(sync.state.sources())} followed now).", flush=True)
        serve_web(Services(models=models, web=web, store=store, embedder=embedder, rag_config=rag_config,
                           sessions=sessions, users=users, identity=identity, audit=audit, jobs=jobs, quotas=quotas,
                           collections=collections, sandbox=sandbox, sync=sync,
                           tools=tools if tools.enabled else None))
    finally:
        tools.close()  # MCP server processes end with the app
        sync.stop()  # before the jobs: no pass is queued after the worker stops
        jobs.close()  # a running pass ends at its next step (files done so far stay recorded)
        sync.close()
        models.close()
    return 0


def doctor(settings: dict[str, object]) -> int:
    from engine.doctor import run_doctor

    engine_config, _ = build_configs(settings)
    from assist.code.check import available_checkers

    report = run_doctor(engine_config)
    report.add("code checkers", ", ".join(f"{lang}: {'yes' if tool else 'not checked'}"
                                          for lang, tool in available_checkers().items()))
    from rag.ocr import OcrOptions, tesseract_status

    # Missing Tesseract is not a failure: scans are refused with a message, everything else works.
    langs = str(settings["ocr_langs"] or "").strip()
    report.add("OCR (scanned pages)", tesseract_status(OcrOptions(langs)) if langs else "off (--ocr-langs '')")
    print(report.render())
    return 0 if report.ok else 1


def show_config(settings: dict[str, object]) -> int:
    secret = {o.name for o in OPTIONS if o.secret}

    def masked(name: str, value):
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):  # base_url = [{url, api_key}]
            return [{**v, "api_key": "***"} if isinstance(v, dict) and v.get("api_key") else v for v in value]
        return "***" if name in secret and value else value

    for name, value in settings.items():
        if name == "models":  # [[models]] tables may carry a remote_api_key
            value = [{key: masked(key, v) for key, v in table.items()} for table in value]
        if name == "mcp_servers":  # env and headers may carry keys: names only
            value = [{key: ({k: "***" for k in v} if key in ("env", "headers") and isinstance(v, dict) else v)
                      for key, v in table.items()} for table in value]
        print(f"{name} = {masked(name, value)!r}")
    return 0


def users_command(settings: dict[str, object], args: argparse.Namespace) -> int:
    from assist.audit import AuditLog
    from assist.users import UserStore
    from assist.users_cli import run_users_command

    _, web = build_configs(settings)
    # With --auth, its users are known here too, so 'users token NAME' works for them.
    return run_users_command(args.command[1:], UserStore(web.users_file, memory_users=web.auth),
                             AuditLog(web.data_dir / "audit.jsonl"), role=args.role, label=args.label)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = resolve_settings(args)
    logging.basicConfig(level=str(settings["log_level"]).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if logging.getLogger().level > logging.DEBUG:  # one line per loopback call (llama.cpp's tokenizer) is noise
        logging.getLogger("httpx").setLevel(logging.WARNING)
    command = " ".join(args.command)
    try:
        if command == "serve":
            return serve(settings)
        if command == "doctor":
            return doctor(settings)
        if command == "config show":
            return show_config(settings)
        if args.command[0] == "users":
            return users_command(settings, args)
    except Exception as exc:
        from webui.adapters import is_domain_error

        if is_domain_error(exc):  # a message written for the person at the terminal
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    print(f"Unknown command {command!r}: use serve, doctor, 'config show' or users.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
