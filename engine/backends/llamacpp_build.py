"""What the installed llama.cpp build (the ``xllamacpp`` wheel) can do, in plain words.

``--backend auto``, ``doctor``, the System tab and /api/health ask here: whether xllamacpp
imports, which CPU features it was built with, and which GPU backends (CUDA, ROCm/HIP,
Vulkan, …) it can offload to.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field

__all__ = ["LlamaCppBuild", "llamacpp_build"]


@dataclass(frozen=True)
class LlamaCppBuild:
    available: bool
    version: str = ""
    cpu_features: tuple[str, ...] = ()
    gpus: tuple[str, ...] = field(default_factory=tuple)  # e.g. "CUDA0 (NVIDIA H100, 79.1 GiB)"
    error: str = ""  # why it is not available

    @property
    def offloads(self) -> bool:
        """True when this build can put layers on a GPU/DCU."""
        return bool(self.gpus)

    def describe(self) -> str:
        if not self.available:
            return f"llama.cpp unavailable: {self.error}"
        where = "GPU " + ", ".join(self.gpus) if self.gpus else "CPU only"
        features = " ".join(self.cpu_features) or "baseline"
        return f"llama.cpp (xllamacpp {self.version}) · {where} · CPU {features}"


def _cpu_features(system_info: str) -> tuple[str, ...]:
    # "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | … |" -> ("SSE3", "AVX", "AVX2", …)
    features = []
    for part in system_info.replace("CPU :", "|").split("|"):
        name, _, value = part.partition("=")
        if value.strip() == "1":
            features.append(name.strip())
    return tuple(features)


def llamacpp_build() -> LlamaCppBuild:
    """Import xllamacpp and ask it; never raises (an unusable build says why)."""
    # The CPU wheel runs its threads on OpenMP. We leave libgomp's wait policy as llama.cpp users have
    # it (spin briefly, then sleep): on a quiet 2-core machine forcing OMP_WAIT_POLICY=PASSIVE decoded
    # ~0.6x as fast (threads sleep at every barrier of every layer); it only wins when other busy
    # processes share the cores (docs/performance.md). A value the user sets is libgomp's to read.
    try:
        xllamacpp = importlib.import_module("xllamacpp")
    except ImportError as exc:  # includes a wheel whose shared library fails to load
        return LlamaCppBuild(False, error=f"xllamacpp does not import ({exc}); pip install xllamacpp")
    try:
        version = importlib.metadata.version("xllamacpp")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(xllamacpp, "__version__", "unknown")
    gpus = []
    for device in xllamacpp.get_device_info():
        kind = str(device.get("type", ""))
        if "GPU" in kind or "IGPU" in kind:
            total = device.get("memory_total", 0) / 1024**3
            gpus.append(f"{device.get('name')} ({device.get('description')}, {total:.1f} GiB)")
    return LlamaCppBuild(True, version, _cpu_features(xllamacpp.get_system_info()), tuple(gpus))
