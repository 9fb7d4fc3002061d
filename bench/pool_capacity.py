"""How many chats one app process can front: ``python -m bench.pool_capacity [--levels 1,4,16] [--tokens 16]``.

Two llama.cpp servers (Gemma 3 270M, xllamacpp's ``Server`` in child processes, bench/llama_servers.py)
make a pool; the app (``python app.py --model pool=,backend=openai,base_url="A;B"``) fronts them.
For each concurrency N, N streamed chats run at once (a) straight to the servers (round robin) and
(b) through the app's ``/v1/chat/completions``; we record wall time, time to first token and total
time per chat (median, p95), and the app process's CPU time (psutil) per chat and per streamed token.

The app's own ceiling is what its CPU time per token says: one core spends ``cpu_per_token`` seconds
on each streamed token, so it keeps up with ``1 / cpu_per_token`` tokens/s across all chats. On a
shared 2-core machine the servers, the clients and the app compete for the same cores, so the
latencies are bounded by that; the ratios and the CPU per token are what carry over.

Writes ``bench/results/<date>-cpu-pool-capacity.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import psutil

from bench.live_app import LiveApp
from bench.llama_servers import LlamaServer, gemma_path

RESULTS = Path(__file__).resolve().parent / "results"
ROUNDS = 2
PROMPT = [{"role": "user", "content": "Write a short note about the sea."}]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _one(client: httpx.AsyncClient, url: str, model: str, tokens: int) -> tuple[float, float, int]:
    """One streamed chat: (ttft, total, content pieces)."""
    started = time.perf_counter()
    ttft, pieces = None, 0
    body = {"model": model, "messages": PROMPT, "max_tokens": tokens, "temperature": 0.7, "stream": True}
    async with client.stream("POST", url + "/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: {") and '"content"' in line:
                pieces += 1
                ttft = ttft if ttft is not None else time.perf_counter() - started
    return ttft or 0.0, time.perf_counter() - started, pieces


async def _wave(urls: list[str], model: str, n: int, tokens: int) -> dict:
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        started = time.perf_counter()
        runs = await asyncio.gather(*(_one(client, urls[i % len(urls)], model, tokens) for i in range(n)))
        wall = time.perf_counter() - started
    ttfts, totals, pieces = [r[0] for r in runs], [r[1] for r in runs], sum(r[2] for r in runs)
    return {"n": n, "wall_s": round(wall, 3), "ttft_p50_s": round(statistics.median(ttfts), 3),
            "ttft_p95_s": round(_pct(ttfts, 0.95), 3), "total_p50_s": round(statistics.median(totals), 3),
            "total_p95_s": round(_pct(totals, 0.95), 3), "pieces": pieces,
            "pieces_per_s": round(pieces / wall, 1)}


def measure(levels: list[int], tokens: int, slots: int) -> dict:
    logs = Path(tempfile.mkdtemp(prefix="pool-capacity-"))
    servers = [LlamaServer(gemma_path(), n_ctx=256 * slots, n_parallel=slots, log_dir=logs).start() for _ in range(2)]
    app = None
    try:
        base_url = ";".join(s.v1 for s in servers)
        app = LiveApp(logs / "data", "--model", f"pool=,backend=openai,base_url={base_url}",
                      "--max-queue", "512").start()
        proc = psutil.Process(app.proc.pid)
        asyncio.run(_wave([app.url + "/v1"], "pool", 2, tokens))  # warm: connections, prompt caches
        idle_before = proc.cpu_times()
        time.sleep(5)
        idle = proc.cpu_times()
        idle_cpu = (idle.user + idle.system - idle_before.user - idle_before.system) / 5
        rows = []
        for n in levels:
            # best of ROUNDS, direct and app taking turns: other jobs on the shared cores come and go
            bares, vias, cpu, load = [], [], 0.0, os.getloadavg()[0]
            for _ in range(ROUNDS):
                bares.append(asyncio.run(_wave([s.v1 for s in servers], "gemma", n, tokens)))
                before = proc.cpu_times()
                vias.append(asyncio.run(_wave([app.url + "/v1"], "pool", n, tokens)))
                after = proc.cpu_times()
                cpu += after.user + after.system - before.user - before.system
            bare, via = min(bares, key=lambda w: w["wall_s"]), min(vias, key=lambda w: w["wall_s"])
            cpu /= ROUNDS
            rows.append({"n": n, "direct": bare, "app": via, "load_1m": round(load, 2),
                         "app_cpu_s": round(cpu, 3), "app_cpu_pct": round(100 * cpu / statistics.mean(w["wall_s"] for w in vias), 1),
                         "app_cpu_ms_per_chat": round(1000 * cpu / n, 2),
                         "app_cpu_ms_per_piece": round(1000 * cpu / max(1, statistics.mean(w["pieces"] for w in vias)), 3),
                         "ttft_added_p50_s": round(via["ttft_p50_s"] - bare["ttft_p50_s"], 3),
                         "total_ratio_p50": round(via["total_p50_s"] / bare["total_p50_s"], 3)})
            print(json.dumps(rows[-1]), flush=True)
        health = httpx.get(app.url + "/api/health", timeout=10).json()["models"][0].get("replicas", [])
        return {"levels": rows, "tokens": tokens, "slots_per_server": slots, "servers": 2,
                "idle_app_cpu_pct": round(100 * idle_cpu, 2), "app_rss_mb": round(proc.memory_info().rss / 2**20),
                "replicas": [{k: r[k] for k in ("name", "requests", "errors")} for r in health],
                "cores": os.cpu_count(), "load_avg_end": list(os.getloadavg())}
    finally:
        if app is not None:
            app.stop()
        for server in servers:
            server.stop()


def render(result: dict) -> str:
    lines = [f"# Pool capacity: one app process in front of 2 llama.cpp servers ({date.today()})", "",
             f"Gemma 3 270M, {result['slots_per_server']} slots per server, 1 thread each; {result['tokens']} tokens "
             f"per streamed chat; best of {ROUNDS} rounds; {result['cores']} cores shared by servers, clients and app (other jobs ran too: "
             f"load at end {result['load_avg_end'][0]:.2f}). App idle CPU {result['idle_app_cpu_pct']} %, RSS "
             f"{result['app_rss_mb']} MB.", "",
             "| N | direct wall s | app wall s | TTFT p50 direct / app s | total p50 direct / app s | ratio | "
             "app CPU % | app CPU ms/chat | app CPU ms/token | load |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["levels"]:
        d, a = row["direct"], row["app"]
        lines.append(f"| {row['n']} | {d['wall_s']} | {a['wall_s']} | {d['ttft_p50_s']} / {a['ttft_p50_s']} | "
                     f"{d['total_p50_s']} / {a['total_p50_s']} | {row['total_ratio_p50']} | {row['app_cpu_pct']} | "
                     f"{row['app_cpu_ms_per_chat']} | {row['app_cpu_ms_per_piece']} | {row['load_1m']} |")
    lines += ["", "Requests per replica at the end: " + ", ".join(
        f"{r['name']} {r['requests']} ({r['errors']} errors)" for r in result["replicas"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,16,32,64")
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--slots", type=int, default=8, help="parallel slots per llama.cpp server")
    args = parser.parse_args()
    result = measure([int(x) for x in args.levels.split(",")], args.tokens, args.slots)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{date.today()}-cpu-pool-capacity"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
