"""``python -m bench.gpu_wheels``: the wheels a device run needs, in ``.whl/`` (git-ignored), under 64 MiB.

The lent NVIDIA machine has torch 2.11 (CUDA 13) and transformers 5.17 but no network. The engine
needs transformers >= 5.24 (``cache=`` in ``forward``/``generate``) and 4-bit needs bitsandbytes, so
both travel as wheels (the device tool's ``carry: [".whl"]``; ``bench/gpu_device_run.sh`` installs
them). bitsandbytes' manylinux wheel is 41 MiB because it holds a library for every CUDA/ROCm/XPU
version; we keep only the CUDA 13 ones (the card's torch is cu130) and the CPU one, ~4 MiB.
Run here, with network: the download is pip's own (``pip download --no-deps --only-binary``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = ["strip_wheel", "download", "main", "BITSANDBYTES"]

BITSANDBYTES = "0.50.2"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
LIMIT = 64 * 1024**2
_NATIVE = re.compile(r"libbitsandbytes_(?P<target>[a-z]+\d*)\.so$")


def strip_wheel(wheel: Path, keep: set[str]) -> Path:
    """Rewrite ``wheel`` in place without the ``libbitsandbytes_<target>.so`` files whose target is
    not in ``keep`` (e.g. {"cpu", "cuda130"}); RECORD loses their lines too. Returns the wheel."""
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        dropped = {i.filename for i in src.infolist()
                   if (m := _NATIVE.search(i.filename)) and m.group("target") not in keep}
        for item in src.infolist():
            if item.filename in dropped:
                continue
            data = src.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = [line for line in data.decode().splitlines() if line.split(",", 1)[0] not in dropped]
                data = ("\n".join(lines) + "\n").encode()
            dst.writestr(item, data)
    tmp.replace(wheel)
    return wheel


def download(requirement: str, dest: Path) -> Path:
    """One wheel for the device (CPython 3.12, manylinux x86-64), without its dependencies."""
    before = set(dest.glob("*.whl"))
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", *platforms, "-d", str(dest), requirement], check=True)
    name = re.split(r"[=<>!~]", requirement, maxsplit=1)[0].replace("-", "_").lower()
    found = [w for w in dest.glob("*.whl") if w.name.lower().startswith(name + "-")]
    new = [w for w in found if w not in before] or found
    return max(new, key=lambda w: w.stat().st_mtime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_wheels", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=".whl", help="folder for the wheels (default .whl, git-ignored)")
    parser.add_argument("--cuda", default="cuda130,cuda132", help="bitsandbytes libraries to keep (plus cpu)")
    parser.add_argument("--transformers", default=importlib.metadata.version("transformers"),
                        help="transformers version to carry (default: the one installed here)")
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    bnb = strip_wheel(download(f"bitsandbytes=={BITSANDBYTES}", dest), {"cpu", *args.cuda.split(",")})
    transformers = download(f"transformers=={args.transformers}", dest)
    wheels = sorted(dest.glob("*.whl"))
    total = sum(w.stat().st_size for w in wheels)
    for wheel in wheels:
        print(f"{wheel.stat().st_size / 1024**2:6.1f} MiB  {wheel.name}")
    print(f"{total / 1024**2:6.1f} MiB in {dest}/ (the working tree travels too: keep all under "
          f"{LIMIT // 1024**2} MiB); carry it with carry: [\"{dest}\"]")
    stale = [w for w in wheels if w not in (bnb, transformers)]
    if stale:
        print(f"note: {dest}/ holds other wheels too ({', '.join(w.name for w in stale)}); two versions of one "
              "package stop the install there", file=sys.stderr)
    return 0 if total < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
