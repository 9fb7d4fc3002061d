"""Settings: flags, ``DCU_CHAT_*`` environment variables and a TOML file -> the subsystems' config
dataclasses. The one place where they are built (``app.py`` serves with them).

Options are derived from the config dataclasses' field metadata (``help``, ``secret``, ``option``,
``scale``), so a new field with help text is a new flag, environment variable and TOML key at once.
Several models: ``--model`` may repeat, or ``[[models]]`` tables list them (``build_model_specs``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10 (common on DTK images)
    import tomli as tomllib

__all__ = ["OPTIONS", "Option", "parser", "resolve_settings", "build_config", "build_configs", "build_models",
           "build_model_specs", "build_quota_config", "build_sandbox_config", "build_tools_config",
           "build_identity_config", "build_sync_config", "parse_env"]


@dataclass(frozen=True)
class Option:
    name: str  # flag --name-with-dashes, env DCU_CHAT_NAME_WITH_UNDERSCORES, TOML key name_with_underscores
    kind: type
    default: object
    help: str
    secret: bool = False
    targets: tuple[tuple[type, str], ...] = ()  # the config fields it fills
    scale: int = 1  # option value x scale = field value (MB -> bytes)


def _config_classes() -> tuple[type, ...]:
    """The subsystems' config dataclasses: their fields' ``metadata["help"]`` make the options."""
    from assist.identity.config import IdentityConfig
    from assist.quotas import QuotaConfig
    from assist.sandbox import SandboxConfig
    from assist.sync_config import SyncConfig
    from assist.tools.config import ToolsConfig
    from engine.config import EngineConfig, ModelsConfig
    from rag.config import RagConfig
    from webui.services import WebConfig

    return (EngineConfig, ModelsConfig, RagConfig, WebConfig, QuotaConfig, SandboxConfig, ToolsConfig, IdentityConfig,
            SyncConfig)


def _kind(annotation: str) -> type:
    for name, kind in (("bool", bool), ("float", float), ("int", int)):
        if re.search(rf"\b{name}\b", annotation):
            return kind
    return str  # str, Path, and text that app.py parses (--auth)


def _derive_options() -> tuple[Option, ...]:
    """One option per exposed config field (fields of the same name share one); only app-level extras here."""
    found: dict[str, Option] = {}
    for cls in _config_classes():
        for f in dataclasses.fields(cls):
            if "help" not in f.metadata:
                continue  # internal: not a setting people choose
            name, scale = f.metadata.get("option", f.name), int(f.metadata.get("scale", 1))
            default = None if f.default is dataclasses.MISSING else f.default  # a factory: the subsystem decides
            default = default // scale if isinstance(default, int) and scale > 1 else default
            default = str(default) if isinstance(default, Path) else (None if default == () else default)
            known = found.get(name)
            if known is not None:
                if known.default != default:
                    raise AssertionError(f"option {name}: {cls.__name__} disagrees on the default")
                found[name] = dataclasses.replace(known, targets=(*known.targets, (cls, f.name)))
                continue
            found[name] = Option(name, _kind(str(f.type)), default, f.metadata["help"],
                                 bool(f.metadata.get("secret")), ((cls, f.name),), scale)
    return (*found.values(), Option("log_level", str, "info", "debug, info, warning or error"))


OPTIONS: tuple[Option, ...] = _derive_options()


def parser() -> argparse.ArgumentParser:
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
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{option.help} (default: {'on' if option.default else 'off'}) [env {env}]")
        elif option.name == "model":  # several models: --model a.gguf --model fast=b.gguf,backend=llamacpp
            parser.add_argument(flag, action="append", default=None, metavar="[NAME=]MODEL[,key=value…]",
                                help=f"{option.help}; repeat it to serve several models (the first is the "
                                     "default); 'embedded' is the embedded default; key=value settings "
                                     "(backend, device, dtype, quantization, …) apply to that model only "
                                     f"[env {env}]")
        else:
            parser.add_argument(flag, type=option.kind, default=None,
                                help=f"{option.help} (default: {option.default}) [env {env}]")
    return parser


def parse_env(option: Option, raw: str):
    """An environment (or per-model ``key=value``) text as the option's type."""
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
        if "models" in flat:  # [[models]]: a list of tables, one per model
            settings["models"] = _model_tables(config_path, flat.pop("models"))
        if "mcp_servers" in flat:  # [[mcp_servers]]: checked by build_tools_config
            settings["mcp_servers"] = flat.pop("mcp_servers")
        if "sync" in flat:  # [[sync]]: folders collections follow, checked by build_sync_config
            settings["sync"] = flat.pop("sync")
        unknown = sorted(set(flat) - set(settings))
        if unknown:
            hints = [f"{key} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(key, settings, 1))
                     else key for key in unknown]
            raise SystemExit(f"{config_path}: unknown option(s) {', '.join(hints)}; see python app.py --help.")
        settings.update(flat)
    for option in OPTIONS:
        raw = environ.get("DCU_CHAT_" + option.name.upper())
        if raw is not None and raw != "":
            settings[option.name] = parse_env(option, raw)
        value = getattr(args, option.name, None)
        if value is not None:
            settings[option.name] = value
    return settings


def _model_tables(config_path: str, tables) -> list[dict]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SystemExit(f"{config_path}: models must be a list of tables ([[models]] sections).")
    return tables


def _per_model_option(key: str, where: str) -> Option:
    """The option a per-model key names; only options of the model's own config (EngineConfig)."""
    from engine.config import EngineConfig

    options = {o.name: o for o in OPTIONS if any(cls is EngineConfig for cls, _ in o.targets)}
    option = options.get(key)
    if option is None or key == "model":
        close = difflib.get_close_matches(key, options, 1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SystemExit(f"{where}: {key!r} is not a per-model setting{hint}; per-model settings are "
                         f"{', '.join(sorted(set(options) - {'model'}))}.")
    return option


def build_model_specs(settings: dict[str, object]) -> list:
    """The configured models, each with its own EngineConfig: --model (repeatable; env DCU_CHAT_MODEL),
    else [[models]] tables in the config file, else the embedded default. Settings without a
    per-model value (device, backend, …) apply to every model."""
    from engine.config import EngineConfig
    from engine.model_spec import EMBEDDED, ModelSpec, default_alias, parse_model_option

    given = settings.get("model")
    entries: list[tuple[str, dict]] = []  # (where it came from, {option: value} incl. alias/model)
    if given:
        for text in [given] if isinstance(given, str) else list(given):
            alias, source, extra = parse_model_option(str(text))
            entries.append((f"--model {text}", {**extra, "alias": alias, "model": source}))
    elif settings.get("models"):
        for number, table in enumerate(settings["models"], 1):
            table = {k.replace("-", "_"): v for k, v in table.items()}
            source = table.get("model")
            table["model"] = None if source in (None, "", EMBEDDED) else str(source)
            entries.append((f"[[models]] #{number}", table))
    else:
        entries.append(("the embedded default", {"alias": None, "model": None}))
    specs = []
    for where, values in entries:
        alias, source = values.pop("alias", None), values.pop("model")
        own = dict(settings, model=None)
        for key, value in values.items():
            option = _per_model_option(key, where)
            own[option.name] = parse_env(option, value) if isinstance(value, str) else value
        config = build_config(EngineConfig, own, model=source)
        specs.append(ModelSpec(str(alias) if alias else default_alias(config), config))
    return specs


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


_PARSERS = {"auth": _parse_auth}  # option -> text to field value, where the field is not plain text


def build_config(cls: type, settings: dict[str, object], **given):
    """``cls`` (a config dataclass) from the settings of the options that fill its fields.

    An unset option (None) leaves the field at the subsystem's own default; ``given`` wins.
    """
    values = {}
    for option in OPTIONS:
        value = settings.get(option.name)
        for target, field_name in option.targets:
            if target is cls and value is not None:
                parse = _PARSERS.get(option.name)
                values[field_name] = parse(value) if parse else value * option.scale if option.scale > 1 else value
    return cls(**{**values, **given})


def build_configs(settings: dict[str, object]):
    """The one place where flags become the subsystems' config dataclasses: (default model's engine, web)."""
    from webui.services import WebConfig

    return build_model_specs(settings)[0].config, build_config(WebConfig, settings)


def build_models(settings: dict[str, object]):
    """Every configured model in a registry (nothing loaded yet)."""
    from engine.config import ModelsConfig
    from engine.models import ModelRegistry

    return ModelRegistry(build_model_specs(settings), build_config(ModelsConfig, settings))


def build_quota_config(settings: dict[str, object]):
    from assist.quotas import QuotaConfig

    return build_config(QuotaConfig, settings)


def build_sandbox_config(settings: dict[str, object]):
    from assist.sandbox import SandboxConfig

    return build_config(SandboxConfig, settings)


def build_identity_config(settings: dict[str, object]):
    """Sign-in through a company directory (--ldap-*) or an OpenID provider (--oidc-*)."""
    from assist.identity.config import IdentityConfig

    return build_config(IdentityConfig, settings)


def build_tools_config(settings: dict[str, object]):
    """The tool loop's limits (flags) and the admin's ``[[mcp_servers]]`` tables (config file only)."""
    from assist.tools.config import ToolsConfig, parse_mcp_servers

    return build_config(ToolsConfig, settings, mcp_servers=parse_mcp_servers(settings.get("mcp_servers")))


def build_sync_config(settings: dict[str, object]):
    """Folder sync: --sync-root and friends (flags) and the admin's ``[[sync]]`` tables (config file only)."""
    from assist.sync_config import SyncConfig, parse_sync_entries

    return build_config(SyncConfig, settings, entries=parse_sync_entries(settings.get("sync")))
