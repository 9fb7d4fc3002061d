"""The only place that calls ``from_pretrained``.

A model comes from a local directory, a hub id already in the local cache (we never download
at run time), a ``.gguf`` file, or the embedded default (``engine.embedded``: a GGUF assembled
from PyPI packages). GGUF de-quantization is slow (minutes on 2 cores), so a GGUF is converted
once and cached as safetensors; later loads take seconds. This is the DCU/GPU path: on a CPU,
llama.cpp serves GGUF files as they are (``engine.backends.llamacpp``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.device import DeviceInfo, pick_dtype
from engine.embedded import EMBEDDED_MODEL, embedded_gguf
from engine.errors import ModelLoadError, OutOfMemory

__all__ = ["LoadedModel", "load_model", "load_vision_model", "resolve_model_source"]

log = logging.getLogger(__name__)
AUTO_INT8_MIN_PARAMS = 50_000_000  # below this, decoding is not bound by weight reads
Progress = Callable[[str], None]


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    name: str
    source: str
    dtype: str
    quantization: str | None
    notes: list[str]
    processor: object = None  # a vision-language model's (AutoProcessor): images and text together


def _cached_conversion_dir(gguf: Path, cache_dir: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return cache_dir / "models" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path, cache_dir: Path, progress: Progress) -> Path:
    """De-quantize a GGUF once and save it as safetensors; return the cached directory."""
    out = _cached_conversion_dir(gguf, cache_dir)
    if (out / "config.json").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress(f"Converting {gguf.name} once (a few minutes on 2 CPU cores); later starts take seconds…")
    started = time.monotonic()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"Could not read the GGUF file {gguf}: {exc}. Check that it is a complete GGUF of a "
            "model architecture transformers supports (install the `gguf` package)."
        ) from exc
    # The weights are now plain floats; drop the GGUF quantizer marker so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, out)  # atomic: a half-written conversion never looks complete
        except OSError:
            if not (out / "config.json").exists():
                raise
            # Another process (a second server, a parallel test run) finished the same conversion first.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(f"Converted {gguf.name} in {time.monotonic() - started:.0f} s; cached at {out}.")
    return out


def resolve_model_source(config: EngineConfig, progress: Progress) -> tuple[str, str]:
    """Return (directory or hub id to load, display name)."""
    if config.model is None:
        gguf = embedded_gguf(config.cache_dir, progress)
        return str(convert_gguf(gguf, config.cache_dir, progress)), EMBEDDED_MODEL.model_id
    path = Path(config.model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist. Check the path passed to --model.")
        return str(convert_gguf(path, config.cache_dir, progress)), path.name
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"{path} has no config.json. --model expects a Hugging Face model directory "
                "(config.json, tokenizer files, *.safetensors) or a .gguf file."
            )
        return str(path), path.name
    if path.is_absolute() or config.model.startswith("."):
        raise ModelLoadError(f"Model path {path} does not exist. Check the path passed to --model.")
    return config.model, config.model  # a hub id, resolved from the local cache only


def _quantization_kwargs(config: EngineConfig, device: DeviceInfo, dtype, notes: list[str]) -> dict:
    if config.quantization not in ("4bit", "8bit"):
        return {}
    if not device.is_gpu:
        notes.append(f"--quantization {config.quantization} needs a GPU/DCU (bitsandbytes); loading unquantized.")
        return {}
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        notes.append("bitsandbytes is not installed (pip install '.[quant]'); loading unquantized.")
        return {}
    if config.quantization == "8bit":
        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    }


def _int8_on_cpu(config: EngineConfig, model, tokenizer, source: str, progress: Progress, notes: list[str]):
    """Weight int8 on the CPU (engine/quantize.py); "auto" only where it pays off and passes the quality gate."""
    import torch

    if config.quantization == "auto":
        params = sum(p.numel() for p in model.parameters())
        if params < AUTO_INT8_MIN_PARAMS or model.dtype != torch.float32:
            return None  # tiny models are not bound by weight reads; a chosen dtype is respected
    from engine.quantize import apply_int8

    progress("Preparing int8 weights for the CPU (the quality check runs once per model)…")
    return apply_int8(model, tokenizer, source, config.cache_dir, config.quantization == "int8", notes)


def load_model(config: EngineConfig, device: DeviceInfo, progress: Progress | None = None) -> LoadedModel:
    """Load tokenizer and model onto ``device``; raise ModelLoadError with what to check."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress = progress or (lambda message: log.info("%s", message))
    source, name = resolve_model_source(config, progress)
    dtype = pick_dtype(device, config.dtype)
    notes: list[str] = [device.warning] if device.warning else []
    offline = {"local_files_only": True, "trust_remote_code": config.trust_remote_code}
    quant = _quantization_kwargs(config, device, dtype, notes)
    progress(f"Loading {name} on {device.kind} as {str(dtype).removeprefix('torch.')}…")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **offline)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, device_map=device.torch_device if quant else None, **quant, **offline
        )
    except (OSError, ValueError, ImportError, KeyError) as exc:
        if "out of memory" in str(exc).lower():
            raise OutOfMemory(f"Not enough memory to load {name} on {device.describe()}. "
                              "Try --quantization 4bit, a smaller model, or --device cpu.") from exc
        raise ModelLoadError(
            f"Could not load model {source!r}: {exc}. Check that the directory has config.json, tokenizer "
            "files and weights, that a hub id is already in the local cache (no downloads at run time), "
            "and whether the model needs --trust-remote-code."
        ) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise OutOfMemory(f"Not enough memory to load {name} on {device.describe()}. "
                              "Try --quantization 4bit, a smaller model, or --device cpu.") from exc
        raise
    if not quant:
        model = model.to(device.torch_device)
    model.eval()
    int8_scope = None
    if config.quantization == "int8" and device.is_gpu:
        notes.append("--quantization int8 is the CPU path; on a GPU/DCU use 8bit or 4bit.")
    elif config.quantization in ("int8", "auto") and not device.is_gpu:
        int8_scope = _int8_on_cpu(config, model, tokenizer, source, progress, notes)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    label = "4bit" if quant and config.quantization == "4bit" else ("8bit" if quant else None)
    if int8_scope:
        label = "int8" if int8_scope == "all" else "int8 lm_head"
    return LoadedModel(model, tokenizer, name, source, str(dtype).removeprefix("torch."), label, notes)


def load_vision_model(config: EngineConfig, device: DeviceInfo, progress: Progress | None = None) -> LoadedModel:
    """A vision-language model directory with its processor (AutoProcessor + AutoModelForImageTextToText).

    No int8/bitsandbytes here: the CPU quality gate and the quantizers are measured on text models only.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    progress = progress or (lambda message: log.info("%s", message))
    source, name = resolve_model_source(config, progress)
    dtype = pick_dtype(device, config.dtype)
    notes: list[str] = [device.warning] if device.warning else []
    if config.quantization in ("4bit", "8bit", "int8"):
        notes.append(f"--quantization {config.quantization} is not applied to vision-language models; loading "
                     "unquantized.")
    offline = {"local_files_only": True, "trust_remote_code": config.trust_remote_code}
    progress(f"Loading {name} (vision-language) on {device.kind} as {str(dtype).removeprefix('torch.')}…")
    try:
        processor = AutoProcessor.from_pretrained(source, **offline)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, **offline)
    except (OSError, ValueError, ImportError, KeyError) as exc:
        raise ModelLoadError(
            f"Could not load the vision-language model {source!r}: {exc}. Check that the directory has "
            "config.json, the processor files (preprocessor_config.json, tokenizer) and weights, and whether the "
            "model needs --trust-remote-code."
        ) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise OutOfMemory(f"Not enough memory to load {name} on {device.describe()}. "
                              "Try a smaller model or --device cpu.") from exc
        raise
    model = model.to(device.torch_device)
    model.eval()
    tokenizer = processor.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer, name, source, str(dtype).removeprefix("torch."), None, notes, processor)
