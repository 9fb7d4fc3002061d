"""The models a server is configured with: names, where each comes from, how it is loaded.

``--model [NAME=]MODEL[,key=value…]`` (``parse_model_option``) or a ``[[models]]`` table gives a
``ModelSpec``; ``app_settings`` builds its ``EngineConfig``. The registry (``engine.models``)
loads and unloads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import ConfigError

__all__ = ["ModelSpec", "DEFAULT_ALIAS", "EMBEDDED", "parse_model_option", "default_alias"]

DEFAULT_ALIAS = "default"  # every request may name the first configured model so
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
EMBEDDED = "embedded"  # ``--model NAME=embedded``: the embedded default under an alias of one's own


@dataclass(frozen=True)
class ModelSpec:
    """One configured model: the name requests use, and how to load it."""

    alias: str
    config: EngineConfig

    def __post_init__(self) -> None:
        if not _ALIAS.match(self.alias) or self.alias == DEFAULT_ALIAS:
            raise ConfigError(f"The model name {self.alias!r} cannot be used: use letters, digits and . _ : / - "
                              f"(and not {DEFAULT_ALIAS!r}, which always means the first model).")

    @property
    def remote(self) -> bool:
        return self.config.backend == "openai"

    def weights_bytes(self) -> int:
        """The model's files on disk: what loading it costs, as far as can be known before."""
        if self.config.model is None:
            from engine.embedded import EMBEDDED_MODEL

            return EMBEDDED_MODEL.size
        path = Path(self.config.model).expanduser()
        if path.is_file():
            return path.stat().st_size
        if path.is_dir():
            return sum(p.stat().st_size for p in path.glob("*.safetensors")) or \
                sum(p.stat().st_size for p in path.glob("*.bin"))
        return 0  # a hub id resolved from the cache, or a remote model: unknown here


def default_alias(config: EngineConfig) -> str:
    """The name a model gets when none is given: the file or directory name, as the backends report it."""
    if config.backend == "openai" and config.model is None:
        return config.remote_model or "remote"
    if config.model is None:
        from engine.embedded import EMBEDDED_MODEL

        return EMBEDDED_MODEL.model_id
    return Path(config.model).name or config.model


def parse_model_option(text: str) -> tuple[str | None, str | None, dict[str, str]]:
    """``[ALIAS=]SOURCE[,key=value...]`` -> (alias, model source, per-model settings).

    SOURCE is a path, a hub id, or ``embedded`` (the embedded default). The keys are option
    names (backend, device, dtype, quantization, max_context, ...); app.py checks them.
    """
    first, *rest = [part.strip() for part in text.split(",")]
    alias, sep, source = first.partition("=")
    if not sep:
        alias, source = None, first
    settings: dict[str, str] = {}
    for part in rest:
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--model {text!r}: after the model, give key=value settings separated by commas "
                              "(e.g. --model fast=model.gguf,backend=llamacpp,device=cpu).")
        settings[key.strip().replace("-", "_")] = value.strip()
    source = source.strip()
    if alias is not None and not alias.strip():
        raise ConfigError(f"--model {text!r}: the name before '=' is empty.")
    return (alias.strip() if alias else None), (None if source in ("", EMBEDDED) else source), settings
