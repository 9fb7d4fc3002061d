"""``python -m bench.gpu``: the --tiny run on this machine, the budget and no-GPU paths, the wheel
stripping for the device, the device script, and (where a GPU is present) the tiny run on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("gradio", "faiss", "sentence_transformers", "fastapi", "rag", "assist", "webui")
# Runs the benchmark in a fresh interpreter and reports which forbidden packages it imported.
_RUN = """
import json, sys
from bench.gpu import main
code = main(sys.argv[1:])
loaded = sorted({name.split('.')[0] for name in sys.modules} & set(FORBIDDEN_NAMES))
print('FORBIDDEN=' + json.dumps(loaded))
sys.exit(code)
""".replace("FORBIDDEN_NAMES", repr(FORBIDDEN))


def _results(out: Path) -> dict:
    (path,) = out.glob("*.json")
    assert path.with_suffix(".md").exists()
    return json.loads(path.read_text(encoding="utf-8"))


def _run_tiny(out: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    # Keep a PYTHONPATH that is already set (the device run puts its carried wheels there).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", _RUN, "--tiny", "--out", str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, _results(out)


@pytest.mark.slow
def test_tiny_run_measures_or_skips_every_configuration_and_imports_only_the_engine(tmp_path):
    proc, results = _run_tiny(tmp_path, "--device", "cpu")
    forbidden = json.loads(proc.stdout.rsplit("FORBIDDEN=", 1)[1].splitlines()[0])
    assert forbidden == [], f"bench.gpu imported {forbidden}"
    rows = results["rows"]
    assert {row["config"] for row in rows} == {"bf16", "fp16", "nf4"}
    assert results["finished"] and results["tiny"] and results["device"] == "cpu-tiny"
    for row in rows:
        assert row["status"] in ("measured", "skipped"), row
        if row["status"] == "skipped":
            assert row["reason"], row
    by_step = {(row["config"], row["step"]): row for row in rows}
    # On a CPU: 4-bit and OOM recovery are skipped and say why; everything else is measured.
    assert all(row["status"] == "skipped" and "CUDA" in row["reason"] for row in rows if row["config"] == "nf4")
    oom = by_step[("bf16", "OOM recovery")]
    assert oom["status"] == "skipped" and "CUDA" in oom["reason"]
    measured = [row for row in rows if row["config"] != "nf4" and row["kind"] != "oom"]
    assert all(row["status"] == "measured" for row in measured), [r for r in measured if r["status"] != "measured"]
    for row in measured:
        if row["kind"] in ("single", "generate", "streams"):
            assert row["tokens_per_s"] > 0 and row["ttft_s"] > 0, row
        if row["kind"] != "load":
            assert row["peak_memory_bytes"] > 0, row
    assert by_step[("bf16", "engine, 64 concurrent streams")]["peak_batch"] > 1  # decoded as a batch
    assert by_step[("bf16", "engine, 1 stream")]["completion_tokens"] == results["sizes"]["single_new"]  # no EOS
    assert by_step[("bf16", "TTFT, 4k-token prompt")]["prompt_tokens"] >= 4096
    kv = by_step[("bf16", "KV reuse, chat turn 8 vs turn 1")]
    assert kv["cached_tokens"] > kv["prompt_tokens"] // 2  # turn 8 reused the earlier turns' KV
    markdown = next(tmp_path.glob("*.md")).read_text(encoding="utf-8")
    assert "| configuration | precision | concurrency | tokens/s | TTFT (s) | peak memory (GiB) | notes |" in markdown
    assert "3,024 tok/s aggregate" in markdown and "TensorRT-LLM 200 tok/s" in markdown
    assert "engine.loader.load_model" in results["model"]["how"]


def test_a_spent_budget_records_every_step_as_skipped_for_the_budget(tmp_path):
    from bench.gpu import main

    assert main(["--tiny", "--device", "cpu", "--budget-s", "0", "--out", str(tmp_path)]) == 0
    rows = _results(tmp_path)["rows"]
    assert rows and all(row["status"] == "skipped" for row in rows)
    assert all("budget" in row["reason"] for row in rows if row["config"] != "nf4")


def test_the_7b_run_without_a_gpu_says_so_and_measures_nothing(tmp_path):
    from bench.gpu import main

    assert main(["--device", "cpu", "--out", str(tmp_path)]) == 0
    results = _results(tmp_path)
    assert results["model"]["shape"]["hidden_size"] == 3584 and results["model"]["shape"]["vocab_size"] == 152064
    assert all(row["status"] == "skipped" and "no CUDA" in row["reason"]
               for row in results["rows"] if row["config"] != "nf4")


def test_budget_keeps_time_for_later_core_steps():
    from bench.gpu_plan import CONFIGURATIONS, Budget

    budget = Budget(deadline=100.0)
    reserve = budget.core_cost(CONFIGURATIONS[1:])
    assert reserve > 0
    assert budget.fits(10, now=0.0) and not budget.fits(10, now=0.0, reserve_s=reserve)
    budget.learn(10, 30)  # this machine is three times slower than the estimates
    assert budget.estimate(10) == pytest.approx(30)


def test_strip_wheel_keeps_only_the_wanted_native_libraries(tmp_path):
    from bench.gpu_wheels import strip_wheel

    wheel = tmp_path / "bitsandbytes-0-py3-none-any.whl"
    names = ["bitsandbytes/__init__.py", "bitsandbytes/libbitsandbytes_cpu.so",
             "bitsandbytes/libbitsandbytes_cuda118.so", "bitsandbytes/libbitsandbytes_cuda130.so",
             "bitsandbytes/libbitsandbytes_rocm64.so"]
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in names:
            archive.writestr(name, b"x")
        archive.writestr("bitsandbytes-0.dist-info/RECORD", "\n".join(f"{n},sha256=x,1" for n in names) + "\n")
    strip_wheel(wheel, {"cpu", "cuda130"})
    with zipfile.ZipFile(wheel) as archive:
        kept = set(archive.namelist())
        record = archive.read("bitsandbytes-0.dist-info/RECORD").decode()
    assert kept == {names[0], names[1], names[3], "bitsandbytes-0.dist-info/RECORD"}
    assert "cuda118" not in record and "rocm64" not in record and "cuda130" in record


@pytest.mark.slow
def test_device_script_without_a_gpu_runs_and_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the device script would run the full benchmark")
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "BUDGET_S": "30"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_device_run.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert "NO GPU" in log and "doctor exit status" in log and "bench exit status 0" in log
    assert "accelerator" in (tmp_path / "doctor.txt").read_text(encoding="utf-8")
    assert all(row["status"] == "skipped" for row in _results(tmp_path)["rows"])
    assert len(list(tmp_path.iterdir())) <= 8  # what the device tool brings back


@pytest.mark.gpu
def test_tiny_run_on_the_gpu_measures_every_configuration(tmp_path):
    """On a CUDA/ROCm/DCU machine: bf16, fp16 and (with bitsandbytes) 4-bit measured, and a request
    too big for the capped card gets OutOfMemory while the next one succeeds."""
    import importlib.util

    _, results = _run_tiny(tmp_path, "--device", "cuda")
    rows = {(row["config"], row["step"]): row for row in results["rows"]}
    for (config, _), row in rows.items():
        if config == "nf4" and importlib.util.find_spec("bitsandbytes") is None:
            assert row["status"] == "skipped" and "bitsandbytes" in row["reason"]
        else:
            assert row["status"] == "measured", row
    oom = rows[("bf16", "OOM recovery")]
    assert oom["recovered"] and "ran out of memory" in oom["error_message"]
    assert rows[("bf16", "engine, 1 stream")]["peak_memory_bytes"] > 0
