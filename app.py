"""dcu-chat entry point: CLI -> config objects -> services -> serve.

    python app.py [serve] [--model PATH_OR_ID] [--device auto|cpu|cuda|dcu] ...
    python app.py doctor
    python app.py config show
    python app.py users add|list|passwd|remove|token|tokens|revoke [NAME] [--role admin] [--label TEXT]

Settings come from, in increasing precedence: built-in defaults, a TOML file (``--config``),
environment variables ``DCU_CHAT_<NAME>`` (e.g. ``DCU_CHAT_API_KEY``), and command-line flags.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10 (common on DTK images)
    import tomli as tomllib

__all__ = ["main", "OPTIONS", "resolve_settings"]


@dataclass(frozen=True)
class Option:
    name: str  # flag --name-with-dashes, env DCU_CHAT_NAME_WITH_UNDERSCORES, TOML key name_with_underscores
    kind: type
    default: object
    help: str
    secret: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("model", str, None, "model directory, .gguf file or cached hub id (default: embedded Gemma 3 270M)"),
    Option("device", str, "auto", "auto, cpu, cuda, cuda:N, dcu or rocm"),
    Option("dtype", str, "auto", "auto, float32, float16 or bfloat16 (auto: bf16/fp16 on accelerators, fp32 on CPU)"),
    Option("quantization", str, "auto", "auto (int8 on CPU when it passes a quality check), none, 4bit or 8bit "
           "(bitsandbytes, GPU/DCU; with vllm: bitsandbytes or fp8) or int8 (CPU)"),
    Option("trust_remote_code", bool, False, "allow model code from the model directory (ChatGLM3, Baichuan2, Qwen-1)"),
    Option("strict_device", bool, False, "fail instead of falling back to the CPU when --device is missing"),
    Option("max_context", int, None, "context window to use, in tokens (default: the model's, at most 8192)"),
    Option("max_queue", int, 32, "requests that may wait for the model before new ones get 'busy'"),
    Option("max_batch", int, 8, "requests decoded together (1 turns batching off)"),
    Option("kv_cache_mb", int, 512, "memory for KV caches kept to reuse earlier turns (0 turns reuse off)"),
    Option("backend", str, "auto", "auto (llama.cpp for GGUF models on the CPU or a GPU build of llama.cpp, else "
           "transformers), llamacpp, transformers, vllm, or openai (remote server)"),
    Option("gpu_layers", int, None, "with llama.cpp: layers to offload to the GPU (-1 all, 0 none; default: all when "
           "the installed llama.cpp build can offload)"),
    Option("base_url", str, None, "with --backend openai: the server's /v1 URL, e.g. http://10.0.0.5:8000/v1"),
    Option("remote_model", str, None, "with --backend openai: model name on the remote server (default: the first "
           "one it lists)"),
    Option("remote_api_key", str, None, "with --backend openai: API key of the remote server", secret=True),
    Option("tensor_parallel_size", int, 1, "with --backend vllm: number of cards"),
    Option("cache_dir", str, None, "where converted models are cached (default ~/.cache/dcu-chat)"),
    Option("data_dir", str, "data", "where collections, sessions and exports are stored"),
    Option("embedding_model", str, None, "local sentence-transformers directory (default: bundled all-MiniLM-L6-v2)"),
    Option("ocr_langs", str, "eng+chi_sim", "Tesseract languages for scanned PDF pages and images, joined by + "
           "(e.g. eng, eng+chi_sim); an empty value turns OCR off"),
    Option("reranker_model", str, None, "local sentence-transformers CrossEncoder directory to re-order document "
           "search hits (default: none; no reranker is bundled)"),
    Option("host", str, "127.0.0.1", "address to bind; 0.0.0.0 exposes the server to the network"),
    Option("port", int, 7860, "port to serve the UI and API on"),
    Option("api_key", str, None, "a shared key: 'Authorization: Bearer KEY' (or the sign-in page) opens every route",
           secret=True),
    Option("auth", str, None, "sign-in users kept in memory: user:password[,user2:password2] or a file with one "
           "user:password a line (prefer 'users add', which stores only hashes)", secret=True),
    Option("users_file", str, None, "users, API tokens and sign-ins (default: DATA_DIR/users.sqlite3); any user "
           "in it turns sign-in on"),
    Option("metrics_public", bool, False, "serve /metrics without sign-in (a Prometheus scraper on a trusted network)"),
    Option("user_tokens_per_day", int, None, "tokens (prompt + answer) each user may use per UTC day; 429 after "
           "(default: no limit)"),
    Option("user_max_concurrent", int, None, "answers each user may have running at once; 429 beyond "
           "(default: no limit)"),
    Option("log_level", str, "info", "debug, info, warning or error"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py", description="dcu-chat: chat, document Q&A and code assistant.",
        epilog="Precedence, lowest to highest: defaults < --config TOML file < DCU_CHAT_* environment < flags. "
               "Example file: assets/dcu-chat.example.toml. API and backends: docs/api.md.")
    parser.add_argument("command", nargs="*", default=["serve"],
                        help="serve (default), doctor, 'config show', "
                             "or users add|list|passwd|remove|token|tokens|revoke [NAME]")
    parser.add_argument("--role", default="user", choices=("user", "admin"), help="with 'users add': the role")
    parser.add_argument("--label", default="", help="with 'users token': what the token is for")
    parser.add_argument("--config", help="TOML file with any of the options below (flags and env override it) "
                                         "[env DCU_CHAT_CONFIG]")
    for option in OPTIONS:
        flag = "--" + option.name.replace("_", "-")
        env = "DCU_CHAT_" + option.name.upper()
        if option.kind is bool:
            parser.add_argument(flag, action="store_true", default=None, help=f"{option.help} [env {env}]")
        else:
            parser.add_argument(flag, type=option.kind, default=None,
                                help=f"{option.help} (default: {option.default}) [env {env}]")
    return parser


def _parse_env(option: Option, raw: str):
    if option.kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return option.kind(raw)


def resolve_settings(args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, object]:
    """Defaults < TOML file < environment < flags; returns a flat dict of option values."""
    environ = os.environ if environ is None else environ
    settings = {o.name: o.default for o in OPTIONS}
    config_path = args.config or environ.get("DCU_CHAT_CONFIG")
    if config_path:
        with open(config_path, "rb") as handle:
            data = tomllib.load(handle)
        flat = {k: v for section in data.values() if isinstance(section, dict) for k, v in section.items()}
        flat.update({k: v for k, v in data.items() if not isinstance(v, dict)})
        unknown = sorted(set(flat) - set(settings))
        if unknown:
            raise SystemExit(f"{config_path}: unknown option(s) {', '.join(unknown)}; see python app.py --help.")
        settings.update(flat)
    for option in OPTIONS:
        raw = environ.get("DCU_CHAT_" + option.name.upper())
        if raw is not None and raw != "":
            settings[option.name] = _parse_env(option, raw)
        value = getattr(args, option.name, None)
        if value is not None:
            settings[option.name] = value
    return settings


def _parse_auth(raw: str | None) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    entries = Path(raw).read_text(encoding="utf-8").splitlines() if Path(raw).is_file() else raw.split(",")
    pairs = []
    for entry in (e.strip() for e in entries):
        if not entry or entry.startswith("#"):
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise SystemExit(f"--auth entries must look like user:password (got {entry.split(':')[0]!r}…).")
        pairs.append((user, password))
    return tuple(pairs)


def build_configs(settings: dict[str, object]):
    """The one place where flags become the subsystems' config dataclasses."""
    from engine.config import EngineConfig, default_cache_dir
    from webui.services import WebConfig

    engine = EngineConfig(
        model=settings["model"], device=settings["device"], dtype=settings["dtype"],
        quantization=settings["quantization"], trust_remote_code=bool(settings["trust_remote_code"]),
        strict_device=bool(settings["strict_device"]), max_context=settings["max_context"],
        max_queue=settings["max_queue"], backend=settings["backend"], base_url=settings["base_url"],
        remote_model=settings["remote_model"], remote_api_key=settings["remote_api_key"],
        tensor_parallel_size=settings["tensor_parallel_size"], max_batch=settings["max_batch"],
        gpu_layers=settings["gpu_layers"],
        kv_cache_bytes=int(settings["kv_cache_mb"]) * 1024**2,
        cache_dir=Path(settings["cache_dir"]) if settings["cache_dir"] else default_cache_dir(),
    )
    web = WebConfig(host=settings["host"], port=settings["port"], api_key=settings["api_key"],
                    auth=_parse_auth(settings["auth"]), data_dir=Path(settings["data_dir"]),
                    users_file=Path(settings["users_file"]) if settings["users_file"] else None,
                    metrics_public=bool(settings["metrics_public"]))
    return engine, web


def build_quota_config(settings: dict[str, object]):
    from assist.quotas import QuotaConfig

    return QuotaConfig(tokens_per_day=settings["user_tokens_per_day"], max_concurrent=settings["user_max_concurrent"])


def _rag_services(settings: dict[str, object], web):
    """The document store with the embedding model loaded (explicitly, with progress)."""
    from rag import DocumentStore, RagConfig, SentenceTransformerEmbedder
    from rag.ocr import OcrOptions, tesseract_status
    from rag.rerank import CrossEncoderReranker

    rag_config = RagConfig(data_dir=web.data_dir, embedding_model=settings["embedding_model"],
                           ocr_langs=str(settings["ocr_langs"] or "").strip(),
                           reranker_model=settings["reranker_model"])
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
    return (f"WARNING: serving on {web.host} without --api-key or --auth (or users from 'python app.py users "
            "add'): anyone on the network can use it.")


def serve(settings: dict[str, object]) -> int:
    from assist.access import CollectionAccess
    from assist.audit import AuditLog
    from assist.collections import UserCollections
    from assist.quotas import Quotas
    from assist.sessions import SessionStore
    from assist.users import UserStore
    from engine.engine import Engine
    from webui.auth import Gate
    from webui.server import serve as serve_web
    from webui.services import Services

    engine_config, web = build_configs(settings)
    users = UserStore(web.users_file, memory_users=web.auth)  # before the slow load: fail fast
    warning = exposure_warning(web, Gate(users, web.api_key))
    if warning:
        print(warning, file=sys.stderr)
    sessions = SessionStore(web.data_dir / "sessions.sqlite3")
    audit = AuditLog(web.data_dir / "audit.jsonl")
    quotas = Quotas(build_quota_config(settings), web.data_dir / "usage.sqlite3")
    access = CollectionAccess(web.data_dir / "access.sqlite3")
    print("Loading the model…", flush=True)
    engine = Engine.load(engine_config, progress=lambda message: print(message, flush=True))
    for note in engine.info.notes:
        print(f"note: {note}", flush=True)
    store, embedder, rag_config = _rag_services(settings, web)
    from assist.ingest_jobs import IngestJobs

    jobs = IngestJobs(store, web.data_dir)  # marks jobs a previous run left unfinished as failed
    try:
        serve_web(Services(engine=engine, web=web, store=store, embedder=embedder, rag_config=rag_config,
                           sessions=sessions, users=users, audit=audit, jobs=jobs, quotas=quotas,
                           collections=UserCollections(store, access, audit.record)))
    finally:
        jobs.close()
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
    for name, value in settings.items():
        shown = "***" if name in secret and value else value
        print(f"{name} = {shown!r}")
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
    args = _parser().parse_args(argv)
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
