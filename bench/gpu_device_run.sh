#!/usr/bin/env bash
# One device call: `python app.py doctor`, the GPU tests (`pytest -m gpu`) and the GPU benchmark
# (`python -m bench.gpu --budget-s $BUDGET_S`), everything written into $OUT (at most 6 files).
#
# On the lent machine, from the repository root, with the wheels of `python -m bench.gpu_wheels`
# carried in .whl/ (transformers >= 5.24 for the engine, bitsandbytes for 4-bit):
#     bash bench/gpu_device_run.sh          # device tool: carry [".whl"], timeout_s 600
# About 15 s doctor + 30-60 s tests + BUDGET_S (420) of benchmark. Without a GPU it still runs,
# says so, and exits 0: doctor reports the CPU, the GPU tests skip, the benchmark records every
# configuration as skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-bench/results/device-run}
PYTHON=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-420}
# Only these test files: the device has no gradio, FastAPI or FAISS, so the rest of the suite
# cannot even be collected there.
GPU_TESTS=${GPU_TESTS:-tests/unit/test_bench_gpu.py}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
LOG="$OUT/run.log"
log() { echo "[device-run] $*" | tee -a "$LOG"; }

log "started $(date -u +%FT%TZ) in $(pwd); python: $(command -v "$PYTHON")"
if compgen -G ".whl/*.whl" >/dev/null; then
    log "installing the carried wheels: $(cd .whl && echo *.whl)"
    if "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl >>"$LOG" 2>&1; then
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    else
        log "WARNING: installing the wheels failed (see above); going on with what is installed"
    fi
else
    log "no .whl/ folder: using the installed packages (4-bit needs bitsandbytes; the engine transformers >= 5.24)"
fi

"$PYTHON" - >>"$LOG" 2>&1 <<'EOF'
import importlib.metadata as md
for name in ("torch", "transformers", "bitsandbytes", "tokenizers", "safetensors", "accelerate", "psutil"):
    try:
        print(f"{name:14} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name:14} not installed")
EOF
if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >>"$LOG" 2>&1; then
    log "GPU: $("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0), torch.version.cuda)' 2>&1)"
else
    log "NO GPU: torch.cuda.is_available() is False here. Doctor reports the CPU, the GPU tests skip, and the" \
        "benchmark records every configuration as skipped; nothing below is a GPU measurement."
fi
command -v nvidia-smi >/dev/null && nvidia-smi >>"$LOG" 2>&1

log "python app.py doctor"
timeout 120 "$PYTHON" app.py doctor >"$OUT/doctor.txt" 2>&1
log "doctor exit status $? (non-zero is expected without the embedded default model package)"

log "pytest -m gpu $GPU_TESTS"
timeout "${PYTEST_TIMEOUT_S:-180}" "$PYTHON" -m pytest -m gpu -p no:cacheprovider -q -rs $GPU_TESTS \
    >"$OUT/pytest-gpu.txt" 2>&1
status=$?
[ "$status" = 5 ] && log "pytest: no test selected (exit 5)" || log "pytest exit status $status: $(tail -n 1 "$OUT/pytest-gpu.txt")"

log "python -m bench.gpu --budget-s $BUDGET_S --out $OUT"
timeout "$((${BUDGET_S%.*} + 120))" "$PYTHON" -m bench.gpu --budget-s "$BUDGET_S" --out "$OUT" >"$OUT/bench.log" 2>&1
log "bench exit status $?; results: $(cd "$OUT" && ls ./*.json ./*.md 2>/dev/null | tr '\n' ' ')"
tail -n 60 "$OUT/bench.log"
log "finished $(date -u +%FT%TZ)"
exit 0
