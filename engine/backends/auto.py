"""``--backend auto``: which in-process backend serves a model, and the fallback when one fails.

A GGUF file (the embedded default among them) goes to llama.cpp when xllamacpp imports and
either the device is the CPU or the installed build offloads to the GPU/DCU; everything else
(safetensors directories, GPUs without a GPU build of llama.cpp) goes to transformers, the
DCU/GPU path. If llama.cpp cannot load the file, transformers serves it instead, with a note
the UI shows: a slower answer beats no server.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from engine.backends.llamacpp_build import LlamaCppBuild, llamacpp_build
from engine.config import EngineConfig
from engine.errors import ModelLoadError

__all__ = ["choose_backend", "load_auto"]

log = logging.getLogger(__name__)


def _is_gguf(config: EngineConfig) -> bool:
    return config.model is None or config.model.lower().endswith(".gguf")


def choose_backend(config: EngineConfig, build: LlamaCppBuild | None = None, device=None) -> tuple[str, str | None]:
    """("llamacpp" | "transformers", a note for the user or None)."""
    if not _is_gguf(config):
        return "transformers", None
    build = build or llamacpp_build()
    if not build.available:
        return "transformers", f"llama.cpp is not available ({build.error}); falling back to transformers (slower)."
    if device is None:
        from engine.device import resolve_device

        device = resolve_device(config.device, config.strict_device)
    if not device.is_gpu or (build.offloads and config.gpu_layers != 0):
        return "llamacpp", None
    return "transformers", None  # a GPU/DCU and a CPU-only llama.cpp build: transformers uses the card


def load_auto(config: EngineConfig, progress: Callable[[str], None] | None = None):
    """The backend ``choose_backend`` picks, loaded; transformers if llama.cpp cannot load the file."""
    choice, note = choose_backend(config)
    notes = [note] if note else []
    if choice == "llamacpp":
        from engine.backends.llamacpp import LlamaCppBackend

        try:
            return LlamaCppBackend.load(dataclasses.replace(config, backend="llamacpp"), progress)
        except ModelLoadError as exc:
            log.warning("llama.cpp could not load the model, falling back to transformers: %s", exc)
            notes.append(f"llama.cpp could not load the model ({exc}); falling back to transformers (slower).")
    from engine.backends.transformers import TransformersBackend  # torch + transformers: only on this path

    backend = TransformersBackend.load(dataclasses.replace(config, backend="transformers"), progress)
    if notes:
        backend.info = dataclasses.replace(backend.info, notes=(*backend.info.notes, *notes))
    return backend
