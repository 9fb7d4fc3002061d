"""Precision and quantization configurations: speed, memory and quality of each.

CPU: fp32, bf16, int8 (engine/quantize.py). GPU/DCU (when present): fp16, bf16, 4-bit. Each
configuration runs in its own process, so its peak memory is its own. Quality is measured
against the first configuration (fp32 on CPU, bf16 on GPU): perplexity on a fixed text, top-1
agreement of next-token predictions, and how many greedy tokens match on a few fixed prompts.
llama.cpp on the same GGUF is measured too when ``llama-cpp-python`` happens to be installed
(never a runtime dependency).

    python -m bench.quant_bench --one int8 [--quick]   # one configuration, prints JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

__all__ = ["run", "CPU_CONFIGS", "GPU_CONFIGS"]

CPU_CONFIGS = {"fp32": {"quantization": "none", "dtype": "float32"},
               "bf16": {"quantization": "none", "dtype": "bfloat16"},
               "int8": {"quantization": "int8"}}
GPU_CONFIGS = {"bf16": {"quantization": "none", "dtype": "bfloat16"},
               "fp16": {"quantization": "none", "dtype": "float16"},
               "4bit": {"quantization": "4bit"}}
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Water boils at a temperature of",
           "The three primary colours are"]


def _measure(name: str, quick: bool) -> dict:
    import torch

    from bench.common import load_engine, peak_rss_bytes, timed_chat
    from engine.config import SamplingParams
    from engine.quantize import GATE_TEXT, perplexity

    configs = GPU_CONFIGS if torch.cuda.is_available() else CPU_CONFIGS
    started = time.perf_counter()
    engine = load_engine(**configs[name])
    load_s = time.perf_counter() - started
    backend = engine.backend
    tokens = 16 if quick else 64
    long_prompt = [{"role": "user", "content": "Summarise this text:\n\n" + GATE_TEXT}]
    story = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
    timed_chat(engine, story, SamplingParams(temperature=0, max_new_tokens=2))  # warm-up: page weights in
    prefill, decode = [], []
    for _ in range(1 if quick else 3):  # best of n: other load on the cores only ever slows a run down
        if backend.kv is not None:
            backend.kv.clear()
        prefill.append(timed_chat(engine, long_prompt, SamplingParams(temperature=0, max_new_tokens=2))[1])
        decode.append(timed_chat(engine, story, SamplingParams(temperature=0, max_new_tokens=tokens,
                                                               repetition_penalty=1.0))[1])
    prefill = min(prefill, key=lambda s: s.ttft_s)
    decode = max(decode, key=lambda s: s.tokens_per_s)
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else peak_rss_bytes()  # serving only
    ppl, top1 = perplexity(backend.model, backend.tokenizer)
    greedy = []
    with torch.inference_mode():
        for prompt in PROMPTS[:1 if quick else 4]:
            ids = torch.tensor([backend.tokenizer(prompt)["input_ids"]], device=backend.device.torch_device)
            out = backend.model.generate(ids, max_new_tokens=8 if quick else 24, do_sample=False)
            greedy.append(out[0, ids.shape[1]:].tolist())
    return {"config": name, "label": engine.info.quantization or engine.info.dtype, "dtype": engine.info.dtype,
            "load_s": round(load_s, 1), "prompt_tokens": prefill.prompt_tokens, "ttft_s": round(prefill.ttft_s, 3),
            "decode_tokens_per_s": round(decode.tokens_per_s, 2), "decode_tokens": decode.completion_tokens,
            "peak_memory_bytes": int(peak), "memory_kind": "device" if torch.cuda.is_available() else "process RSS",
            "perplexity": round(ppl, 3), "top1": top1.tolist(), "greedy": greedy, "notes": list(engine.info.notes)}


def _matching_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _llama_cpp(quick: bool) -> dict:
    try:
        from llama_cpp import Llama
    except ImportError:
        return {"skipped": "llama-cpp-python is not installed (optional: pip install llama-cpp-python)"}
    import os

    from engine.config import EngineConfig
    from engine.loader import embedded_default_path

    llm = Llama(model_path=str(embedded_default_path(EngineConfig().cache_dir)), n_ctx=2048,
                n_threads=os.cpu_count(), verbose=False)
    tokens = 24 if quick else 64
    started, first = time.perf_counter(), None
    count = 0
    for _ in llm.create_completion("Write a long story about a lighthouse keeper and a storm.", max_tokens=tokens,
                                   temperature=0.0, stream=True):
        first = first or time.perf_counter()
        count += 1
    end = time.perf_counter()
    return {"config": "llama.cpp Q4_K_M", "ttft_s": round(first - started, 3),
            "decode_tokens_per_s": round((count - 1) / (end - first), 2) if count > 1 else 0.0}


def run(quick: bool) -> dict:
    """Every configuration of this device, each in a child process, plus quality against the first."""
    import torch

    configs = list(GPU_CONFIGS if torch.cuda.is_available() else CPU_CONFIGS)
    results, errors = [], {}
    for name in configs:
        argv = [sys.executable, "-m", "bench.quant_bench", "--one", name] + (["--quick"] if quick else [])
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            errors[name] = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            continue
        results.append(json.loads(lines[-1]))
    if results:
        base = dict(results[0])
        for row in results:
            row["perplexity_ratio"] = round(row["perplexity"] / base["perplexity"], 4)
            agree = [a == b for a, b in zip(row.pop("top1"), base["top1"], strict=False)]
            row["top1_agreement"] = round(sum(agree) / max(len(agree), 1), 3)
            row["greedy_matching_tokens"] = [_matching_prefix(a, b) for a, b in zip(row.pop("greedy"), base["greedy"],
                                                                                     strict=False)]
    out = {"device": "gpu" if torch.cuda.is_available() else "cpu", "configs": results, "errors": errors,
           "baseline": results[0]["config"] if results else None}
    if not torch.cuda.is_available():
        out["gpu_note"] = "fp16 / bf16 / 4-bit GPU configurations skipped: no CUDA/ROCm/DCU device."
    try:
        out["llama_cpp"] = _llama_cpp(quick)
    except Exception as exc:  # optional comparison only
        out["llama_cpp"] = {"skipped": f"llama.cpp failed: {exc}"}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="precision / quantization benchmark")
    parser.add_argument("--one", help="measure one configuration and print it as JSON")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(_measure(args.one, args.quick) if args.one else run(args.quick)), flush=True)


if __name__ == "__main__":
    main()
