"""Precision and quantization configurations: speed, memory and quality of each.

CPU: fp32, bf16, int8 (engine/quantize.py). GPU/DCU (when present): bf16, fp16, 4-bit.

On a CPU every configuration is loaded at once and measured in interleaved rounds (best of n),
so load from other processes drifting over time does not favour whichever ran last. On a GPU
they run one after the other (load, measure, free) so each one's peak device memory is its own.
Memory is the model's weights in memory (int8 packed weights included) and, on a GPU, the peak
device memory while serving. Quality is measured against the first configuration (fp32 on CPU,
bf16 on GPU): perplexity on a fixed text, top-1 agreement of next-token predictions, and how
many greedy tokens match on fixed prompts. llama.cpp on the same GGUF is measured when
``llama-cpp-python`` happens to be installed (never a runtime dependency).
"""

from __future__ import annotations

import os
import time

__all__ = ["run", "CPU_CONFIGS", "GPU_CONFIGS", "weight_bytes"]

CPU_CONFIGS = {"fp32": {"quantization": "none", "dtype": "float32"},
               "bf16": {"quantization": "none", "dtype": "bfloat16"},
               "int8": {"quantization": "int8"}}
GPU_CONFIGS = {"bf16": {"quantization": "none", "dtype": "bfloat16"},
               "fp16": {"quantization": "none", "dtype": "float16"},
               "4bit": {"quantization": "4bit"}}
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Water boils at a temperature of",
           "The three primary colours are"]
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


def weight_bytes(model) -> int:
    """Bytes of the model's weights in memory: parameters, buffers and packed int8 Linear weights."""
    from engine.quantize import Int8Linear

    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() not in seen:  # tied weights count once
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    for module in model.modules():
        if isinstance(module, Int8Linear):
            total += module.out_features * (module.in_features + 2) + 8 * module.out_features
    return total


def _speed(engine, quick: bool) -> tuple[object, object]:
    """(stats of a ~200-token prompt's prefill, stats of a greedy decode)."""
    from bench.common import timed_chat
    from engine.config import SamplingParams
    from engine.quantize import GATE_TEXT

    if engine.backend.kv is not None:
        engine.backend.kv.clear()
    long_prompt = [{"role": "user", "content": "Summarise this text:\n\n" + GATE_TEXT}]
    prefill = timed_chat(engine, long_prompt, SamplingParams(temperature=0, max_new_tokens=2))[1]
    decode = timed_chat(engine, STORY, SamplingParams(temperature=0, max_new_tokens=16 if quick else 64,
                                                      repetition_penalty=1.0))[1]
    return prefill, decode


def _quality(engine, quick: bool) -> dict:
    import torch

    from engine.quantize import perplexity

    backend = engine.backend
    ppl, top1 = perplexity(backend.model, backend.tokenizer)
    greedy = []
    with torch.inference_mode():
        for prompt in PROMPTS[:1 if quick else 4]:
            ids = torch.tensor([backend.tokenizer(prompt)["input_ids"]], device=backend.device.torch_device)
            out = backend.model.generate(ids, max_new_tokens=8 if quick else 24, do_sample=False)
            greedy.append(out[0, ids.shape[1]:].tolist())
    return {"perplexity": round(ppl, 3), "top1": top1.tolist(), "greedy": greedy}


def _row(name: str, engine, load_s: float, prefill, decode) -> dict:
    return {"config": name, "label": engine.info.quantization or engine.info.dtype, "dtype": engine.info.dtype,
            "load_s": round(load_s, 1), "prompt_tokens": prefill.prompt_tokens, "ttft_s": round(prefill.ttft_s, 3),
            "decode_tokens_per_s": round(decode.tokens_per_s, 2), "decode_tokens": decode.completion_tokens,
            "weights_bytes": weight_bytes(engine.backend.model), "notes": list(engine.info.notes)}


def _measure_all(configs: dict, quick: bool, interleave: bool) -> list[dict]:
    import torch

    from bench.common import free, load_engine, timed_chat
    from engine.config import SamplingParams

    rounds = 1 if quick else 3
    loaded, rows = {}, []
    for name, overrides in configs.items():
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        engine = load_engine(**overrides)
        load_s = time.perf_counter() - started
        timed_chat(engine, STORY, SamplingParams(temperature=0, max_new_tokens=2))  # warm-up
        if not quick:
            _speed(engine, True)  # and the long-prompt shapes
        if interleave:
            loaded[name] = (engine, load_s)
            continue
        runs = [_speed(engine, quick) for _ in range(rounds)]
        row = _row(name, engine, load_s, min((r[0] for r in runs), key=lambda s: s.ttft_s),
                   max((r[1] for r in runs), key=lambda s: s.tokens_per_s))
        row["peak_device_memory_bytes"] = int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
        rows.append(row | _quality(engine, quick))
        free(engine)
        del engine
    if interleave:
        runs: dict[str, list] = {name: [] for name in loaded}
        for _ in range(rounds):
            for name, (engine, _) in loaded.items():
                runs[name].append(_speed(engine, quick))
        for name, (engine, load_s) in loaded.items():
            row = _row(name, engine, load_s, min((r[0] for r in runs[name]), key=lambda s: s.ttft_s),
                       max((r[1] for r in runs[name]), key=lambda s: s.tokens_per_s))
            rows.append(row | _quality(engine, quick))
        free(*[engine for engine, _ in loaded.values()])
        loaded.clear()
    return rows


def _matching_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _llama_cpp(quick: bool) -> dict:
    try:
        from llama_cpp import Llama
    except ImportError:
        return {"skipped": "llama-cpp-python is not installed (optional: pip install llama-cpp-python)"}
    from engine.config import EngineConfig
    from engine.embedded import embedded_gguf

    llm = Llama(model_path=str(embedded_gguf(EngineConfig().cache_dir)), n_ctx=2048,
                n_threads=os.cpu_count(), verbose=False)
    started, first, count = time.perf_counter(), None, 0
    for _ in llm.create_completion(STORY[0]["content"], max_tokens=16 if quick else 64, temperature=0.0,
                                   stream=True):
        first = first or time.perf_counter()
        count += 1
    end = time.perf_counter()
    return {"config": "llama.cpp Q4_K_M", "ttft_s": round(first - started, 3),
            "decode_tokens_per_s": round((count - 1) / (end - first), 2) if count > 1 else 0.0}


def run(quick: bool) -> dict:
    import torch

    gpu = torch.cuda.is_available()
    results = _measure_all(GPU_CONFIGS if gpu else CPU_CONFIGS, quick, interleave=not gpu)
    base = dict(results[0])
    for row in results:
        row["perplexity_ratio"] = round(row["perplexity"] / base["perplexity"], 4)
        agree = [a == b for a, b in zip(row.pop("top1"), base["top1"], strict=False)]
        row["top1_agreement"] = round(sum(agree) / max(len(agree), 1), 3)
        row["greedy_matching_tokens"] = [_matching_prefix(a, b) for a, b in zip(row.pop("greedy"), base["greedy"],
                                                                                 strict=False)]
    out = {"device": "gpu" if gpu else "cpu", "configs": results, "baseline": results[0]["config"],
           "method": "sequential per configuration" if gpu else "all loaded, interleaved rounds, best of n"}
    if not gpu:
        out["gpu_note"] = "fp16 / bf16 / 4-bit GPU configurations skipped: no CUDA/ROCm/DCU device."
    try:
        out["llama_cpp"] = _llama_cpp(quick)
    except Exception as exc:  # an optional comparison only
        out["llama_cpp"] = {"skipped": f"llama.cpp failed: {exc}"}
    return out
