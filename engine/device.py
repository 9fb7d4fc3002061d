"""Find the accelerator, choose a dtype for it, and read its memory.

Hygon DCU cards run a HIP (ROCm-derived) build of PyTorch from the vendor's DTK and are reached
through the ``torch.cuda`` API, so a DCU looks like ROCm to torch; we tell them apart by the
device name and by the presence of ``hy-smi``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

import psutil

from engine.errors import DeviceUnavailable

__all__ = ["DeviceInfo", "detect_devices", "resolve_device", "pick_dtype", "memory_in_use", "smi_summary"]

log = logging.getLogger(__name__)
_GPU_KINDS = ("cuda", "dcu", "rocm")


@dataclass(frozen=True)
class DeviceInfo:
    """One device we can run on. ``torch_device`` is what ``.to()`` takes."""

    kind: str  # "dcu" | "cuda" | "rocm" | "cpu"
    torch_device: str
    name: str
    total_memory: int
    free_memory: int
    bf16: bool
    warning: str | None = None

    @property
    def is_gpu(self) -> bool:
        return self.kind in _GPU_KINDS

    def describe(self) -> str:
        gib = 1024**3
        return f"{self.kind.upper()} {self.name} ({self.free_memory / gib:.1f} of {self.total_memory / gib:.1f} GiB free)"


def _gpu_kind(name: str) -> str:
    import torch

    if getattr(torch.version, "hip", None):
        if "dcu" in name.lower() or "hygon" in name.lower() or shutil.which("hy-smi"):
            return "dcu"
        return "rocm"
    return "cuda"


def _cpu_info() -> DeviceInfo:
    import platform

    vm = psutil.virtual_memory()
    name = platform.processor() or platform.machine()
    return DeviceInfo("cpu", "cpu", f"{name}, {os.cpu_count()} cores", vm.total, vm.available, bf16=True)


def detect_devices() -> list[DeviceInfo]:
    """Every usable device, accelerators first, the CPU last."""
    import torch

    found: list[DeviceInfo] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(index)
            try:
                free, total = torch.cuda.mem_get_info(index)
            except RuntimeError:  # some HIP builds cannot report free memory
                total = torch.cuda.get_device_properties(index).total_memory
                free = total
            with torch.cuda.device(index):
                bf16 = bool(torch.cuda.is_bf16_supported())
            found.append(DeviceInfo(_gpu_kind(name), f"cuda:{index}", name, total, free, bf16))
    found.append(_cpu_info())
    return found


def resolve_device(requested: str = "auto", strict: bool = False) -> DeviceInfo:
    """Map ``--device`` onto a present device; fall back to the CPU with a warning unless strict."""
    devices = detect_devices()
    gpus = [d for d in devices if d.is_gpu]
    cpu = devices[-1]
    if requested == "cpu":
        return cpu
    if requested == "auto":
        return gpus[0] if gpus else cpu
    wanted_index = int(requested.split(":", 1)[1]) if ":" in requested else 0
    kind = requested.split(":", 1)[0]
    matching = [d for d in gpus if kind == "cuda" or d.kind == kind]
    if wanted_index < len(matching):
        return matching[wanted_index]
    message = (
        f"--device {requested} was requested but no such accelerator was found "
        f"(torch sees {len(gpus)} GPU/DCU device(s)). Check the driver with `python app.py doctor`."
    )
    if strict:
        raise DeviceUnavailable(message + " Remove --strict-device to fall back to the CPU.")
    log.warning("%s Falling back to the CPU.", message)
    return DeviceInfo(**{**cpu.__dict__, "warning": message + " Running on the CPU instead (slow)."})


def pick_dtype(device: DeviceInfo, requested: str = "auto"):
    """The torch dtype to load weights in.

    On CPUs we measured fp32 prefill ~6x faster than bf16 (no AVX512-BF16), so fp32 wins for
    time-to-first-token; accelerators get bf16 where supported, else fp16.
    """
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if not device.is_gpu:
        return torch.float32
    return torch.bfloat16 if device.bf16 else torch.float16


def memory_in_use(device: DeviceInfo) -> dict[str, int]:
    """Bytes in use now and at peak: device memory on accelerators, process RSS on the CPU."""
    if device.is_gpu:
        import torch

        index = torch.device(device.torch_device).index or 0
        return {
            "allocated": int(torch.cuda.memory_allocated(index)),
            "peak": int(torch.cuda.max_memory_allocated(index)),
        }
    rss = psutil.Process().memory_info().rss
    return {"allocated": int(rss), "peak": int(rss)}


def smi_summary(timeout: float = 5.0) -> dict[str, str]:
    """Raw output of the vendor monitors that are present (``hy-smi``, ``nvidia-smi``, ``rocm-smi``)."""
    commands = {
        "hy-smi": ["hy-smi"],
        "nvidia-smi": ["nvidia-smi", "--query-gpu=name,memory.used,memory.total,utilization.gpu",
                       "--format=csv,noheader"],
        "rocm-smi": ["rocm-smi", "--showmeminfo", "vram"],
    }
    out: dict[str, str] = {}
    for tool, argv in commands.items():
        if not shutil.which(tool):
            continue
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
            out[tool] = (result.stdout or result.stderr).strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            out[tool] = f"could not run {tool}: {exc}"
    return out
