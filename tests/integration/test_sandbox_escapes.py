"""Escapes from the code sandbox, each attempted for real under bubblewrap and each contained with a
clear result: the network (a server this test runs on 127.0.0.1), the data dir, another user's
files, a fork bomb, a memory bomb, an infinite loop, 100 MB of output, and a child left running
after the program exits. Small limits keep every test to a few seconds; after each, no process of
the sandbox may be left on the machine."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from assist.sandbox import SandboxConfig, run_code

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="needs bubblewrap (apt-get install bubblewrap; make setup installs it)")

LIMITS = SandboxConfig(enabled=True, cpu_s=2, memory_mb=256, max_processes=16, max_output_bytes=64 * 1024,
                       timeout_s=4)


def _pid_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _foreign_pids() -> set[int]:
    """Processes in another PID namespace than ours: where anything of a sandbox would live."""
    ours = _pid_ns("self")
    return {pid for pid in psutil.pids() if _pid_ns(pid) not in (None, ours)}


@pytest.fixture
def no_leftovers():
    """After the test: nothing started inside a sandbox is still running."""
    before = _foreign_pids()
    yield
    deadline = time.monotonic() + 5
    while (left := _foreign_pids() - before) and time.monotonic() < deadline:
        time.sleep(0.1)  # the kernel reaps a killed namespace quickly, but not instantly
    assert not left, [(p, psutil.Process(p).cmdline()) for p in left if psutil.pid_exists(p)]


def test_no_tcp_connection_to_a_server_outside(no_leftovers):
    accepted: list[tuple] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        server.settimeout(0.2)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    connection, peer = server.accept()
                except TimeoutError:
                    continue
                accepted.append(peer)
                connection.close()

        watcher = threading.Thread(target=accept, daemon=True)
        watcher.start()
        # The test's own client reaches the server: the port is really open outside.
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        deadline = time.monotonic() + 2
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(accepted) == 1
        code = ("import socket\n"
                "try:\n"
                f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                "    print('CONNECTED')\n"
                "except OSError as err:\n"
                "    print('refused:', type(err).__name__)\n")
        result = run_code("python", code, None, LIMITS)
        shell = run_code("bash", f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED || echo refused", None,
                         LIMITS)
        time.sleep(0.3)
        stop.set()
        watcher.join()
    assert result.stdout == "refused: ConnectionRefusedError\n", result
    assert "CONNECTED" not in shell.stdout and "refused" in shell.stdout
    assert len(accepted) == 1  # only the test's own connection ever arrived


@pytest.mark.parametrize("where", ["tmp", "var"])
def test_the_data_dir_is_out_of_reach(where, tmp_path, no_leftovers):
    base = tmp_path if where == "tmp" else Path(tempfile.mkdtemp(prefix="sandbox-escape-", dir="/var/tmp"))
    try:
        data = base / "data"
        data.mkdir()
        (data / "sessions.sqlite3").write_text("alice's conversations")
        code = ("import os, pathlib\n"
                f"data = pathlib.Path({str(data)!r})\n"
                "print('visible:', data.exists())\n"
                "for name in ('sessions.sqlite3', 'pwned.txt'):\n"
                "    try:\n"
                "        with open(data / name, 'a') as f:\n"
                "            f.write('pwned')\n"
                "        print('wrote', name)\n"
                "    except OSError as err:\n"
                "        print('refused', name, type(err).__name__)\n")
        result = run_code("python", code, None, LIMITS)
        assert result.exit_code == 0, result
        assert sorted(p.name for p in data.iterdir()) == ["sessions.sqlite3"]
        assert (data / "sessions.sqlite3").read_text() == "alice's conversations"
        if where == "var":  # nothing of /var is in the sandbox
            assert result.stdout.splitlines()[0] == "visible: False"
            assert "refused sessions.sqlite3" in result.stdout and "refused pwned.txt" in result.stdout
        # (under /tmp a program may write: into its own private tmpfs, gone with it)
    finally:
        if where == "var":
            shutil.rmtree(base, ignore_errors=True)


def test_another_users_files_cannot_be_read(no_leftovers):
    other = Path(tempfile.mkdtemp(prefix="sandbox-other-user-", dir="/var/tmp"))
    try:
        secret = other / "secret.txt"
        secret.write_text("TOP-SECRET-4242")
        if os.geteuid() == 0:
            os.chown(secret, 4242, 4242)
        secret.chmod(0o600)
        home = Path.home()
        code = ("import os\n"
                f"for path in ({str(secret)!r}, '/etc/shadow', {str(home / '.bash_history')!r}, '/proc/1/environ'):\n"
                "    try:\n"
                "        print(path, 'READ', open(path, 'rb').read()[:40])\n"
                "    except OSError as err:\n"
                "        print(path, 'refused', type(err).__name__)\n"
                f"for folder in ('/home', {str(home)!r}):\n"
                "    try:\n"
                "        print(folder, 'holds', sorted(os.listdir(folder)))\n"
                "    except OSError as err:\n"
                "        print(folder, 'refused', type(err).__name__)\n")
        result = run_code("python", code, None, LIMITS)
    finally:
        shutil.rmtree(other, ignore_errors=True)
    assert result.exit_code == 0, result
    assert "TOP-SECRET" not in result.stdout and " READ " not in result.stdout, result.stdout
    assert "/home refused FileNotFoundError" in result.stdout
    listing = next(line for line in result.stdout.splitlines() if line.startswith(f"{home} "))
    # The home folder is missing, or holds only the folders of a Python installed under it (read-only).
    assert "refused" in listing or all(name.startswith(".") and name != ".bash_history"
                                       for name in eval(listing.split(" holds ", 1)[1]))


def test_a_fork_bomb_meets_the_process_limit(no_leftovers):
    wide = ("import os, time\n"
            "started = 0\n"
            "try:\n"
            "    for _ in range(500):\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(30)\n"
            "            os._exit(0)\n"
            "        started += 1\n"
            "except OSError as err:\n"
            "    print('refused after', started, type(err).__name__)\n")
    result = run_code("python", wide, None, LIMITS)
    words = result.stdout.split()
    assert words[:2] == ["refused", "after"] and words[3] == "BlockingIOError", result
    assert int(words[2]) < LIMITS.max_processes
    assert result.exit_code == 0 and result.duration_s < 4  # its sleeping children died with it
    classic = run_code("bash", ":(){ :|:& };:\nsleep 30", None, LIMITS)  # the classic, recursive one
    assert classic.timed_out and classic.exit_code is None and classic.duration_s < LIMITS.timeout_s + 6


def test_a_memory_bomb_fails_inside_its_limit(no_leftovers):
    grab = "chunks = []\nwhile True:\n    chunks.append(bytearray(32 * 1024 * 1024))\n"
    result = run_code("python", grab, None, LIMITS)
    assert result.exit_code == 1 and "MemoryError" in result.stderr and not result.timed_out
    # Files in the scratch tmpfs are memory too: bounded like a disk.
    fill = run_code("bash", "head -c 500000000 /dev/zero > /tmp/fill; echo rc=$?; du -m /tmp/fill", None, LIMITS)
    size_mb = int(fill.stdout.split()[-2])
    assert "rc=0" not in fill.stdout and size_mb <= LIMITS.disk_mb, fill


def test_an_infinite_loop_is_stopped(no_leftovers):
    busy = run_code("python", "while True:\n    pass\n", None, LIMITS)
    assert busy.exit_code == 128 + 24 and "CPU-time limit of 2 s" in busy.message  # SIGXCPU
    idle = run_code("python", "import time\nwhile True:\n    time.sleep(0.1)\n", None, LIMITS)
    assert idle.timed_out and idle.exit_code is None and "wall-clock limit of 4 s" in idle.message
    assert idle.duration_s < LIMITS.timeout_s + 3


def test_100_mb_of_output_is_cut_at_the_cap(no_leftovers):
    started = time.monotonic()
    result = run_code("python", "import sys\nsys.stdout.write('x' * 100_000_000)\n", None, LIMITS)
    assert result.truncated and result.exit_code is None and "output truncated" in result.message
    assert len(result.stdout) == LIMITS.max_output_bytes and set(result.stdout) == {"x"}
    flood = run_code("bash", "head -c 100000000 /dev/zero | tr '\\0' y >&2", None, LIMITS)
    assert flood.truncated and len(flood.stderr) == LIMITS.max_output_bytes
    assert time.monotonic() - started < 10


def test_a_child_left_running_after_exit_is_killed(no_leftovers):
    code = ("import os, subprocess, sys\n"
            "subprocess.Popen(['sleep', '300'], start_new_session=True)  # a new session: out of the group\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:  # a daemon that keeps stdout open\n"
            "        import time\n"
            "        while True:\n"
            "            print('still here', flush=True)\n"
            "            time.sleep(0.5)\n"
            "    os._exit(0)\n"
            "print('main done', flush=True)\n")
    result = run_code("python", code, None, LIMITS)
    assert result.exit_code == 0 and not result.timed_out
    assert result.stdout.startswith("main done\n") or "main done\n" in result.stdout
    assert result.duration_s < LIMITS.timeout_s  # it did not wait for the daemon
    # no_leftovers: neither the sleep nor the daemon is running any more
