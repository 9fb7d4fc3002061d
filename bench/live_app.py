"""Start the real app as users do (``python app.py``) on a free loopback port: for tests (the live
app fixtures) and for ``bench.first_start``, which times it.

A plain module rather than part of a conftest: several conftest files exist, and
``from conftest import ...`` would pick whichever was imported first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveApp:
    """``python app.py`` in a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.log_path = data_dir.parent / f"app-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600) -> LiveApp:
        import httpx

        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), "--data-dir", str(self.data_dir),
             *self.args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"app did not become healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
