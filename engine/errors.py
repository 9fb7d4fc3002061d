"""Exceptions of the model side, with messages written for the person at the screen.

The web layer turns these into ``gr.Error`` or HTTP errors; nothing inside ``engine`` knows
about either.
"""

from __future__ import annotations

__all__ = [
    "EngineError",
    "ConfigError",
    "DeviceUnavailable",
    "ModelLoadError",
    "OutOfMemory",
    "EngineBusy",
    "PromptTooLong",
    "GenerationError",
    "RemoteError",
    "ReplicasDown",
    "UnknownModel",
]


class EngineError(Exception):
    """Base class: ``str(err)`` is a complete sentence a user can act on."""

    http_status = 500


class ConfigError(EngineError, ValueError):
    """An option has a value that cannot work."""

    http_status = 400


class DeviceUnavailable(EngineError):
    """The requested device is not present (raised only with --strict-device)."""


class ModelLoadError(EngineError):
    """A model could not be loaded; the message names the path and what to check."""


class OutOfMemory(EngineError):
    """The device ran out of memory; memory was released and the server keeps serving."""

    http_status = 503


class EngineBusy(EngineError):
    """Too many requests are waiting for the model."""

    http_status = 429


class PromptTooLong(EngineError):
    """The prompt cannot fit the model's context even after trimming history."""

    http_status = 400


class GenerationError(EngineError):
    """Generation failed for a reason other than memory."""


class RemoteError(EngineError):
    """A remote model server (``--backend openai``) could not be reached or answered with an error."""

    http_status = 502


class ReplicasDown(RemoteError):
    """Every upstream server of a remote model is down (engine/backends/replica_pool.py)."""

    http_status = 503


class UnknownModel(EngineError, LookupError):
    """A request named a model this server does not serve; the message lists the ones it does."""

    http_status = 404

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, list(known)
        listed = ", ".join(repr(k) for k in self.known)
        super().__init__(f"The model {name!r} does not exist. This server serves {listed} "
                         "('default' means the first).")
