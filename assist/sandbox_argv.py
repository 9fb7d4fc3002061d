"""The bubblewrap command line of one sandboxed run (used by ``assist.sandbox``).

What the program sees: /usr and the /bin, /lib… links read-only, a few harmless /etc files, the
Python interpreter's own prefixes read-only (a virtualenv and the Python it was made from), fresh
/proc and /dev, and private tmpfs /tmp, /dev/shm and work dir of bounded size. Nothing else: not
the data dir, not /root or /home (a prefix that would expose a home directory is never bound; the
system Python is used instead). No network: a new network namespace has only its own loopback.

Run as root, the program drops to a uid of its own that owns no files (``setpriv``) because
RLIMIT_NPROC is not enforced for root; run as another user, bubblewrap puts it in a new user
namespace, where the process count starts from zero. ``prlimit`` sets the rlimits inside.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path

__all__ = ["WORK_DIR", "python_command", "sandbox_argv", "run_as_uid_needed", "installed_module"]

WORK_DIR = "/sandbox"
SYSTEM_PYTHON = "/usr/bin/python3"
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Harmless system files programs read: the dynamic loader's cache, alternatives' links, time zone.
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
        "/etc/mime.types", "/etc/hosts")
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORK_DIR, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "USER": "sandbox", "LOGNAME": "sandbox", "PYTHONUNBUFFERED": "1",  # output before a kill is kept
        "PYTHONDONTWRITEBYTECODE": "1"}


def run_as_uid_needed() -> bool:
    return os.geteuid() == 0


def _unsafe(path: Path) -> bool:
    """A prefix that would bring a home directory (or the whole disk) into the sandbox."""
    home = Path.home().resolve()
    return path == Path("/") or path == home or path in home.parents or path in (Path("/root"), Path("/home"))


def _python_roots() -> list[Path] | None:
    """The folders the running interpreter needs (outside /usr), or None when one is unsafe to bind."""
    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths |= {p.resolve() for p in paths} | {Path(sys.executable).resolve().parent.parent}
    roots: list[Path] = []
    for path in sorted(paths, key=lambda p: len(p.parts)):
        if path == Path("/usr") or Path("/usr") in path.parents or any(r == path or r in path.parents for r in roots):
            continue
        if _unsafe(path):
            return None
        roots.append(path)
    return roots


def python_command() -> tuple[str, list[Path]]:
    """(interpreter, folders to bind read-only): this server's own Python (pytest and the libraries
    beside it), or the system Python when binding its prefixes would expose a home directory."""
    roots = _python_roots()
    if roots is None:
        return SYSTEM_PYTHON, []
    return sys.executable, roots


def installed_module(name: str) -> bool:
    """Whether ``import name`` finds a module inside the sandbox: built in, or on this Python's path
    under the folders the sandbox binds (not the server's own code, not the current directory)."""
    if name in sys.builtin_module_names:
        return True
    python, roots = python_command()
    if python == SYSTEM_PYTHON and python != sys.executable:
        return False  # another interpreter than ours: its path is not ours to search
    bases = [Path("/usr"), *roots]
    paths = [p for p in sys.path if p and any(Path(p) == b or b in Path(p).parents for b in bases)]
    return importlib.machinery.PathFinder.find_spec(name, paths) is not None


class _Builder:
    def __init__(self) -> None:
        self.argv: list[str] = []
        self._dirs: set[str] = {"/"}

    def add(self, *args: str) -> None:
        self.argv.extend(args)

    def parents(self, path: str) -> None:
        """World-readable parent folders: bubblewrap would make them 0700 (root's) otherwise."""
        for parent in reversed(Path(path).parents):
            if str(parent) not in self._dirs:
                self._dirs.add(str(parent))
                self.add("--perms", "0755", "--dir", str(parent))

    def ro_bind(self, path: str, try_only: bool = False) -> None:
        self.parents(path)
        self.add("--ro-bind-try" if try_only else "--ro-bind", path, path)


def sandbox_argv(bwrap: str, *, files: dict[str, int], data: dict[str, int], command: list[str],
                 limits: list[str], disk_bytes: int, uid: int | None, python_roots: list[Path]) -> list[str]:
    """bwrap's argv. ``files``: work-dir file name -> fd with its content; ``data``: absolute path ->
    fd (read-only files such as /etc/passwd); ``limits``: prlimit options; ``uid``: the uid to drop to
    (root only), None to let bubblewrap use a user namespace."""
    b = _Builder()
    b.add(bwrap, "--die-with-parent", "--new-session", "--clearenv")
    if uid is None:
        b.add("--unshare-all")  # incl. a user namespace: the only way without root
    else:  # as root a user namespace would map the program to root outside: no NPROC limit
        b.add("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")
    for key, value in _ENV.items():
        b.add("--setenv", key, value)
    b.add("--proc", "/proc", "--dev", "/dev")
    for scratch in ("/tmp", "/dev/shm", WORK_DIR):  # bounded: files in a tmpfs are memory
        b.add("--perms", "1777", "--size", str(disk_bytes), "--tmpfs", scratch)
    for name, fd in files.items():
        b.add("--perms", "0644", "--file", str(fd), f"{WORK_DIR}/{name}")
    b.ro_bind("/usr")
    for name in _ROOT_LINKS:
        path = Path("/", name)
        if path.is_symlink():
            b.add("--symlink", os.readlink(path), str(path))
        elif path.is_dir():
            b.ro_bind(str(path))
    for etc in _ETC:
        b.ro_bind(etc, try_only=True)
    for path, fd in data.items():
        b.parents(path)
        b.add("--perms", "0644", "--ro-bind-data", str(fd), path)
    for root in python_roots:
        b.ro_bind(str(root))
    b.add("--remount-ro", "/")  # the root holding it all: unsized, so never writable (the tmpfs mounts stay so)
    b.add("--chdir", WORK_DIR)
    if uid is not None:
        # setpriv needs these to drop to the program's uid; it then clears every capability.
        b.add("--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP", "--",
              "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
              "--inh-caps=-all", "--bounding-set=-all")
    else:
        b.add("--")
    b.add("prlimit", *limits, "--", *command)
    return b.argv
