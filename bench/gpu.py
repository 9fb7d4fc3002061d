"""``python -m bench.gpu [--budget-s 420] [--tiny]`` (``make bench-gpu``): the engine on a GPU/DCU.

A model with Qwen2.5-7B's shapes and random weights is made on the card, saved as a normal model
directory and loaded through ``engine.loader.load_model`` for each configuration (bf16, fp16,
bitsandbytes NF4), then measured through the engine users get (``bench/gpu_steps.py``): one stream,
4 / 16 / 64 concurrent streams, TTFT at 1k and 4k prompt tokens, KV reuse at turn 8 vs turn 1,
peak memory, OOM recovery, and transformers' own ``generate`` as the baseline. Steps run in
priority order while the budget lasts (``bench/gpu_plan.py``); the rest are recorded as skipped.
Results are rewritten after every step to ``<out>/<date>-<kind>-<gpu>.json`` and ``.md``, so a run
that is killed still leaves what it measured. ``--tiny`` runs the same steps on a 2-layer model in
seconds (CPU or GPU). Imports only ``engine`` and ``bench``: no UI, no RAG.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench import gpu_steps as steps
from bench.gpu_model import QWEN25_7B, TINY, build_model, build_tokenizer, save_model_dir
from bench.gpu_plan import CONFIGURATIONS, PREPARE_ESTIMATE_S, Budget
from bench.gpu_report import render_markdown
from bench.gpu_results import Run, environment, pending_rows, slug

__all__ = ["main", "TINY_SIZES"]

RESULTS = Path(__file__).resolve().parent / "results"
TINY_SIZES = steps.Sizes(prompt_words=24, single_new=12, stream_new=6, ttft_new=2, turn_words=12, turn_new=4,
                         repeats=1)
BENCH_ENGINE = {"backend": "transformers", "max_batch": 64, "max_queue": 256, "max_context": 8192, "kv_cache_bytes": 1024**3}


def _blocked(config, device, load_mode: str) -> str | None:
    """Why a configuration cannot run here at all (None: it can)."""
    if config.quantization != "4bit":
        return None
    if not device.is_gpu:
        return "4-bit NF4 needs a CUDA/ROCm/DCU device (bitsandbytes); this run is on the CPU"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed here (carry its wheel: python -m bench.gpu_wheels, see the docstring)"
    if load_mode == "memory":
        return "4-bit needs the loader path (bitsandbytes quantizes while from_pretrained loads); --load memory"
    return None


def _load(config, model_dir: Path | None, shape, device, work: Path):
    """An ``Engine`` for one configuration: through ``load_model`` from ``model_dir``, or (no
    directory) around a model built in memory."""
    from engine.backends.transformers import TransformersBackend
    from engine.config import EngineConfig
    from engine.engine import Engine
    from engine.loader import LoadedModel

    engine_config = EngineConfig(model=str(model_dir) if model_dir else None, device=device.torch_device,
                                 dtype=config.dtype, quantization=config.quantization,
                                 cache_dir=work / "cache", **BENCH_ENGINE)
    if model_dir is not None:
        engine = Engine.load(engine_config)
    else:
        import torch

        model = build_model(shape, getattr(torch, config.dtype), device.torch_device)
        loaded = LoadedModel(model, build_tokenizer(shape.vocab_size), shape.name, "built in memory",
                             config.dtype, None, [])
        engine = Engine(TransformersBackend(loaded, device, engine_config), engine_config)
    # Fixed lengths (llama.cpp's ignore_eos): the model has no EOS, and the template's end-of-turn
    # marker, which the engine stops on, must not end a random model's answer either.
    backend = engine.backend
    backend.stop_strings, backend.stop_token_ids = (), ()
    backend.model.generation_config.eos_token_id = None
    return engine


def _measure(step, engine, sizes, device, deadline: float) -> dict:
    if step.kind == "single":
        return steps.single(engine, sizes, device)
    if step.kind == "generate":
        return steps.generate_baseline(engine, sizes, device, batch=step.arg)
    if step.kind == "streams":
        return steps.streams(engine, sizes, device, step.arg, deadline)
    if step.kind == "ttft":
        return steps.ttft(engine, sizes, device, step.arg)
    if step.kind == "kv":
        return steps.kv_reuse(engine, sizes, device, step.arg)
    if step.kind == "oom":
        if not device.is_gpu:
            return {"status": "skipped", "reason": "needs a CUDA/ROCm/DCU device: the card is capped with "
                    "torch.cuda.set_per_process_memory_fraction, which a CPU has no equivalent of"}
        return steps.oom_recovery(engine, sizes, device)
    raise ValueError(f"unknown step kind {step.kind!r}")


def _run_configuration(run: Run, config, budget: Budget, reserve_s: float, model_dir, shape, sizes, device,
                       work: Path) -> None:
    from bench.common import free
    from engine.device import memory_in_use
    from engine.generate import release_memory

    load_row, *step_rows = run.rows(config.key)
    first_core = next((s.estimate_s for s in config.steps if s.core), 0.0)
    if not budget.fits(config.load_estimate_s + first_core, time.monotonic()):
        run.skip_rest(config.key, f"budget: loading and a first step need ~{budget.estimate(config.load_estimate_s + first_core):.0f} s, "
                      f"{budget.left(time.monotonic()):.0f} s left")
        return
    print(f"[bench.gpu] loading {config.key} …", flush=True)
    before = memory_in_use(device)["allocated"]  # on a CPU: the process RSS before the model
    started = time.monotonic()
    try:
        engine = _load(config, model_dir, shape, device, work)
    except Exception as exc:  # one configuration failing to load must not hide the others
        run.set(load_row, status="error", reason=f"{type(exc).__name__}: {exc}")
        run.skip_rest(config.key, "the model did not load", status="error")
        return
    wall = time.monotonic() - started
    budget.learn(config.load_estimate_s, wall)
    info = engine.info
    run.set(load_row, status="measured", wall_s=round(wall, 1), weights_bytes=memory_in_use(device)["allocated"] - before,
            peak_memory_bytes=memory_in_use(device)["peak"], dtype=info.dtype, quantization=info.quantization,
            notes=list(info.notes), how=run.results["model"]["how"], reason=None)
    try:
        if config.quantization == "4bit" and info.quantization != "4bit":
            run.skip_rest(config.key, "the loader did not quantize: " + " ".join(info.notes))
            return
        steps.warm_up(engine)
        for step, row in zip(config.steps, step_rows, strict=True):
            now = time.monotonic()
            if not budget.fits(step.estimate_s, now, 0.0 if step.core else reserve_s):
                run.set(row, status="skipped", reason=f"budget: needs ~{budget.estimate(step.estimate_s):.0f} s"
                        + ("" if step.core else f" plus ~{reserve_s:.0f} s kept for later configurations")
                        + f", {budget.left(now):.0f} s left")
                continue
            print(f"[bench.gpu] {config.key}: {step.name} …", flush=True)
            started = time.monotonic()
            try:
                values = {"status": "measured", "reason": None,
                          **_measure(step, engine, sizes, device, budget.deadline)}
            except Exception as exc:  # a failing step becomes a row; the next step still runs
                values = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
            wall = time.monotonic() - started
            budget.learn(step.estimate_s, wall)
            values.setdefault("wall_s", round(wall, 2))
            run.set(row, **values)
    finally:
        free(engine)
        del engine
        release_memory()  # the model is only unreachable now that the last reference is gone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds of work at most (default 420)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model: the same steps in seconds")
    parser.add_argument("--device", default="auto", help="auto (default), cuda, cuda:N, dcu, rocm or cpu")
    parser.add_argument("--configs", default=",".join(c.key for c in CONFIGURATIONS),
                        help="comma-separated subset of bf16,fp16,nf4")
    parser.add_argument("--load", choices=("loader", "memory"), default="loader",
                        help="loader: save the random model and load it with engine.loader (default); "
                             "memory: build it in memory per configuration (no disk, no 4-bit)")
    parser.add_argument("--work-dir", default=None, help="where the model directory is written (default: TMPDIR)")
    parser.add_argument("--out", default=str(RESULTS), help="directory for the JSON and markdown results")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    began = time.monotonic()
    budget = Budget(began + args.budget_s, scale=0.02 if args.tiny else 1.0)
    wanted = {key.strip() for key in args.configs.split(",") if key.strip()}
    configurations = [c for c in CONFIGURATIONS if c.key in wanted]

    from engine.device import resolve_device

    device = resolve_device(args.device)
    shape, sizes = (TINY, TINY_SIZES) if args.tiny else (QWEN25_7B, steps.Sizes())
    how = ("random weights made on the device, saved once (bf16 safetensors) and loaded per configuration "
           "with engine.loader.load_model" if args.load == "loader" else
           "random weights made on the device per configuration and wrapped without engine.loader")
    results = {"date": time.strftime("%Y-%m-%d"), "device": slug(device, args.tiny), "tiny": args.tiny,
               "budget_s": args.budget_s, "environment": environment(device), "sizes": asdict(sizes),
               "model": {"shape": asdict(shape), "parameters": _parameter_count(shape), "how": how}, "engine_config": BENCH_ENGINE,
               "rows": pending_rows(configurations), "notes": [], "finished": False, "elapsed_s": 0.0}
    run = Run(results, Path(args.out))
    run.save()
    try:
        if not device.is_gpu and not args.tiny:
            reason = ("no CUDA/ROCm/DCU device is visible to torch (torch.cuda.is_available() is False): the 7B run "
                      "needs one; --tiny runs the same steps on a 2-layer model")
            print(f"[bench.gpu] {reason}", flush=True)
            for config in configurations:
                run.skip_rest(config.key, reason)
            return 0
        work_root = Path(args.work_dir or tempfile.gettempdir())
        work = Path(tempfile.mkdtemp(prefix="dcu-chat-bench-gpu-", dir=work_root))
        try:
            _run_all(run, configurations, budget, args.load, shape, sizes, device, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    finally:
        results.update(finished=True, elapsed_s=round(time.monotonic() - began, 1))
        run.save()
        print(render_markdown(results))
        print(f"[bench.gpu] wrote {run.out / run.stem}.json and .md", file=sys.stderr)


def _run_all(run: Run, configurations, budget: Budget, load_mode: str, shape, sizes, device, work: Path) -> None:
    blocked = {c.key: _blocked(c, device, load_mode) for c in configurations}
    for key, reason in blocked.items():
        if reason:
            run.skip_rest(key, reason)
    runnable = [c for c in configurations if not blocked[c.key]]
    run.results["model"]["parameters"] = _parameter_count(shape)
    model_dir = None
    if runnable and load_mode == "loader":
        first = runnable[0]
        need = PREPARE_ESTIMATE_S + first.load_estimate_s + next((s.estimate_s for s in first.steps if s.core), 0.0)
        if not budget.fits(need, time.monotonic()):
            for config in runnable:
                run.skip_rest(config.key, f"budget: making the model and a first configuration need "
                              f"~{budget.estimate(need):.0f} s, {budget.left(time.monotonic()):.0f} s left")
            return None
        model_dir = _prepare(run, shape, device, work, budget)
        if model_dir is None:
            return _run_all(run, configurations, budget, "memory", shape, sizes, device, work)
    for index, config in enumerate(runnable):
        reserve = budget.core_cost(runnable[index + 1:])
        _run_configuration(run, config, budget, reserve, model_dir, shape, sizes, device, work)


def _prepare(run: Run, shape, device, work: Path, budget: Budget) -> Path | None:
    """Make the random model on the card and save it for the loader; None: build in memory instead."""
    import torch

    from engine.generate import release_memory

    need = int(_parameter_count(shape) * 2 * 1.1) + 256 * 1024**2  # bf16 safetensors plus the tokenizer
    free_disk = shutil.disk_usage(work).free
    if free_disk < need:
        run.results["notes"].append(f"{work} has {free_disk / 1024**3:.1f} GiB free and the model needs "
                                    f"{need / 1024**3:.1f} GiB: built in memory per configuration instead")
        run.results["model"]["how"] = "random weights made on the device per configuration (no disk space to save)"
        return None
    print(f"[bench.gpu] making the random {shape.name} on {device.torch_device} and saving it …", flush=True)
    started = time.monotonic()
    try:
        prepared = save_model_dir(shape, work / "model", torch.bfloat16, device.torch_device)
    except (OSError, RuntimeError) as exc:
        run.results["notes"].append(f"saving the model failed ({type(exc).__name__}: {exc}): built in memory instead")
        run.results["model"]["how"] = "random weights made on the device per configuration (saving failed)"
        return None
    finally:
        release_memory()
    budget.learn(PREPARE_ESTIMATE_S, time.monotonic() - started)
    run.results["model"].update(parameters=prepared["parameters"], prepare=prepared)
    run.save()
    return work / "model"


def _parameter_count(shape) -> int:
    head = shape.hidden_size // shape.num_attention_heads
    kv = shape.num_key_value_heads * head
    attention = shape.hidden_size * (shape.hidden_size + 2 * kv) + (shape.hidden_size + 2 * kv)  # q/k/v with bias
    attention += shape.hidden_size * shape.hidden_size  # o_proj
    mlp = 3 * shape.hidden_size * shape.intermediate_size
    layer = attention + mlp + 2 * shape.hidden_size
    return shape.num_hidden_layers * layer + 2 * shape.vocab_size * shape.hidden_size + shape.hidden_size


if __name__ == "__main__":
    sys.exit(main())
