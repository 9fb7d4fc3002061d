"""Weight int8 for CPU decoding, with a quality gate that decides how much of the model to quantize.

Decoding on a CPU is memory-bound: every token reads all weights once. ``Int8Linear`` keeps a
per-output-channel int8 copy of a Linear's weight and runs PyTorch's fbgemm dynamic int8 kernel.
Activations are quantized **per token** (each row is scaled by its own absolute maximum, with
two constant columns that pin every row's range to [-1, 1]), which (a) loses much less than the
per-tensor scheme of ``torch.ao.quantization.quantize_dynamic`` (on Gemma 3 270M: perplexity
+2.6 % for the lm_head vs. +7 % per-tensor, +108 % per-tensor for every layer) and (b) makes a
row's result independent of the other rows in a batch, so batched requests cannot influence each
other.

The lm_head of a large-vocabulary model (262k x 640 for Gemma 3, tied to the embeddings) is the
largest matmul at decode time. We quantize a copy of it (the embedding keeps its float weights
for lookups), so it stays untied.

``quality_gate`` measures perplexity on a fixed text before and after quantizing: first every
Linear layer, then only the lm_head; the widest scope within ``MAX_PPL_RATIO`` wins. The verdict
is cached per model so later starts skip the measurement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["Int8Linear", "GateResult", "quantize_linears", "restore_linears", "perplexity", "quality_gate",
           "apply_int8", "int8_available", "MAX_PPL_RATIO", "GATE_TEXT"]

log = logging.getLogger(__name__)
MAX_PPL_RATIO = 1.05  # int8 is kept when perplexity grows by at most 5 %
SCOPES = ("all", "lm_head")
_GATE_VERSION = 1

# A fixed mix of prose, code and Chinese; ~200 tokens for Gemma's tokenizer.
GATE_TEXT = """The history of computing is a story of people trying to make machines do arithmetic faster and \
with fewer mistakes. Early mechanical calculators could add and subtract, and later ones could multiply. In the \
twentieth century, engineers built electronic computers that filled whole rooms and used thousands of vacuum \
tubes. The transistor made computers smaller, cheaper and more reliable, and the integrated circuit put many \
transistors on a single chip of silicon.
Today a phone in your pocket is more powerful than the computers that guided the first missions to the Moon. \
Software has grown just as quickly: operating systems, databases, web browsers and compilers are among the most \
complex things people have ever built.
def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
北京是中国的首都，也是一座历史悠久的城市。长城和故宫每年吸引数百万游客。"""


def int8_available() -> bool:
    quantized = getattr(torch.ops, "quantized", None)
    return quantized is not None and hasattr(quantized, "linear_dynamic") and hasattr(quantized, "linear_prepack")


class Int8Linear(nn.Module):
    """Inference-only Linear with int8 weights (per output channel) and per-token int8 activations."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        out_features, self.in_features = weight.shape
        self.out_features = out_features
        # Two zero weight columns meet the two constant activation columns (+1, -1) added in forward.
        weight = torch.cat([weight, weight.new_zeros(out_features, 2)], dim=1)
        scale = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
        zero = torch.zeros(out_features, dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensors are deprecated upstream; the fbgemm kernels still ship
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, None)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())
        self.out_dtype = linear.weight.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features).float()
        scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        ones = rows.new_ones(rows.shape[0], 1)
        # Every row now spans exactly [-1, 1], so the kernel's per-tensor range is the same for any batch.
        pinned = torch.cat([rows / scale, ones, -ones], dim=1)
        out = torch.ops.quantized.linear_dynamic(pinned, self._packed, True) * scale
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*shape[:-1], self.out_features).to(self.out_dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def _linear_names(model: nn.Module, scope: str) -> list[str]:
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if scope == "lm_head":
        return [n for n in names if n.split(".")[-1] == "lm_head"]
    return names


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def quantize_linears(model: nn.Module, scope: str = "all") -> dict[str, nn.Module]:
    """Swap Linear layers for ``Int8Linear`` in place; returns the originals (for ``restore_linears``)."""
    originals = {name: model.get_submodule(name) for name in _linear_names(model, scope)}
    replacements = {name: Int8Linear(module) for name, module in originals.items()}  # all or nothing
    for name, module in replacements.items():
        _set_module(model, name, module)
    if "lm_head" in {n.split(".")[-1] for n in originals} and hasattr(model.config, "tie_word_embeddings"):
        model.config.tie_word_embeddings = False  # the int8 head is a copy; the embedding stays float
    return originals


def restore_linears(model: nn.Module, originals: dict[str, nn.Module]) -> None:
    for name, module in originals.items():
        _set_module(model, name, module)


@torch.inference_mode()
def perplexity(model, tokenizer, text: str = GATE_TEXT) -> tuple[float, torch.Tensor]:
    """Perplexity of ``text`` and the model's top-1 next-token predictions."""
    ids = torch.tensor([tokenizer(text)["input_ids"]], device=model.device)
    logits = model(input_ids=ids).logits[0, :-1].float()
    nll = nn.functional.cross_entropy(logits, ids[0, 1:])
    return math.exp(nll.item()), logits.argmax(-1)


@dataclass
class GateResult:
    scope: str | None  # "all", "lm_head" or None (stay in float)
    ppl_float: float
    ppl_int8: float | None
    top1_agreement: float | None
    tried: dict

    def describe(self) -> str:
        if self.scope is None:
            return f"int8 failed the quality gate (perplexity {self.tried}); kept float weights."
        what = "every Linear layer" if self.scope == "all" else "the lm_head"
        return (f"int8 weights for {what}: perplexity {self.ppl_float:.2f} -> {self.ppl_int8:.2f} "
                f"(gate: within {MAX_PPL_RATIO - 1:.0%}), top-1 agreement {self.top1_agreement:.0%}.")


def quality_gate(model, tokenizer, scopes: tuple[str, ...] = SCOPES) -> GateResult:
    """Quantize the widest scope whose perplexity stays within ``MAX_PPL_RATIO``; leaves it applied."""
    reference, top1 = perplexity(model, tokenizer)
    tried: dict[str, float] = {}
    for scope in scopes:
        originals = quantize_linears(model, scope)
        ppl, top1_q = perplexity(model, tokenizer)
        tried[scope] = round(ppl / reference, 4)
        if ppl <= reference * MAX_PPL_RATIO:
            agreement = (top1 == top1_q).float().mean().item()
            return GateResult(scope, reference, ppl, agreement, tried)
        restore_linears(model, originals)
    return GateResult(None, reference, None, None, tried)


def _verdict_path(cache_dir: Path, source: str) -> Path:
    config = Path(source) / "config.json"
    stamp = f"{config.stat().st_size}:{int(config.stat().st_mtime)}" if config.exists() else ""
    key = f"{Path(source).resolve() if Path(source).exists() else source}:{stamp}:{torch.__version__}:{_GATE_VERSION}"
    return cache_dir / "quality" / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".json")


def apply_int8(model, tokenizer, source: str, cache_dir: Path, required: bool, notes: list[str]) -> str | None:
    """Quantize per the (cached) quality gate; returns the scope applied or None.

    ``required`` (an explicit ``--quantization int8``) quantizes at least the lm_head even when the
    gate fails; otherwise (``auto``) a failed gate keeps float weights.
    """
    if not int8_available():
        notes.append("This PyTorch build has no fbgemm int8 kernels; running in float.")
        return None
    path = _verdict_path(cache_dir, source)
    verdict = None
    if path.exists():
        try:
            verdict = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            verdict = None
    if verdict is not None:
        scope = verdict.get("scope") or ("lm_head" if required else None)
        if scope:
            quantize_linears(model, scope)
        gate = GateResult(**{k: verdict.get(k) for k in ("scope", "ppl_float", "ppl_int8", "top1_agreement", "tried")})
    else:
        try:
            gate = quality_gate(model, tokenizer)
        except RuntimeError as exc:  # e.g. a CPU without fbgemm support
            notes.append(f"int8 is not available on this CPU ({exc}); running in float.")
            return None
        scope = gate.scope
        if scope is None and required:
            quantize_linears(model, "lm_head")
            scope = "lm_head"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(gate), indent=2), encoding="utf-8")
        os.replace(tmp, path)
    notes.append(gate.describe() if gate.scope or not required else
                 "int8 (lm_head only, forced by --quantization int8) although it failed the quality gate.")
    return scope
