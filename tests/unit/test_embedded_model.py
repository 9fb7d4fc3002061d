"""The embedded default's GGUF: assembled from its chunk packages once, checked, never loaded damaged.

Fake chunk packages (a module with data/partNN.bin and a dist-info, on sys.path) go through the
real lookup (importlib.metadata + import spec), so the checks run as they do on the real packages.
"""

from __future__ import annotations

import hashlib
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

from engine import embedded
from engine.embedded import EMBEDDED_MODEL, ChunkPackage, EmbeddedModel, embedded_gguf, embedded_state
from engine.errors import ModelLoadError

ROOT = Path(__file__).resolve().parents[2]
PIECES = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


def _install(site: Path, n: int, data: bytes, version: str = "0.9.0") -> ChunkPackage:
    module = f"dcu_fake_chunk_{n}"
    (site / module / "data").mkdir(parents=True)
    (site / module / "__init__.py").write_text("")
    (site / module / "data" / f"part{n:02d}.bin").write_bytes(data)
    info = site / f"dcu_fake_chunk_{n}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: dcu-fake-chunk-{n}\nVersion: {version}\n")
    return ChunkPackage(f"dcu-fake-chunk-{n}", module, f"part{n:02d}.bin", len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture
def fake_model(tmp_path, monkeypatch) -> EmbeddedModel:
    site = tmp_path / "site"
    site.mkdir()
    chunks = tuple(_install(site, n, data) for n, data in enumerate(PIECES, 1))
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(PIECES)
    yield EmbeddedModel("fake-model", "Fake Model", "MIT", "0.9.0", "fake.gguf", len(whole),
                        hashlib.sha256(whole).hexdigest(), chunks)
    for chunk in chunks:
        sys.modules.pop(chunk.module, None)


def test_assembles_once_into_the_cache_and_checks_it(fake_model, tmp_path, monkeypatch):
    messages = []
    path = embedded_gguf(tmp_path / "cache", messages.append, fake_model)
    assert path == tmp_path / "cache" / "gguf" / "fake.gguf"
    assert path.read_bytes() == b"".join(PIECES)
    assert any("Assembling" in m for m in messages)
    assert {p.name for p in path.parent.iterdir()} == {"fake.gguf", "fake.gguf.checked"}  # no temp file left

    def no_work(*args):
        raise AssertionError("a checked file is used as it is")

    monkeypatch.setattr(embedded, "_assemble", no_work)
    monkeypatch.setattr(embedded, "_sha256_of", no_work)
    assert embedded_gguf(tmp_path / "cache", None, fake_model) == path
    assert "assembled and checked" in embedded_state(tmp_path / "cache", fake_model)


def test_a_damaged_chunk_is_an_error_naming_its_package_and_nothing_is_left(fake_model, tmp_path):
    site_file = next(p for p in map(Path, sys.path) if (p / fake_model.chunks[1].module).is_dir())
    damaged = site_file / fake_model.chunks[1].module / "data" / fake_model.chunks[1].file
    damaged.write_bytes(b"x" * 777)  # same size, other bytes
    with pytest.raises(ModelLoadError, match="dcu-fake-chunk-2 0.9.0 is damaged.*--force-reinstall dcu-fake-chunk-2==0.9.0"):
        embedded_gguf(tmp_path / "cache", None, fake_model)
    assert not any((tmp_path / "cache" / "gguf").iterdir())  # neither the file nor its temp


def test_a_missing_or_other_version_package_says_what_to_install(fake_model, tmp_path, monkeypatch):
    missing = ChunkPackage("dcu-fake-chunk-9", "dcu_fake_chunk_9", "part09.bin", 1, "0" * 64)
    broken = EmbeddedModel(**{**fake_model.__dict__, "chunks": (*fake_model.chunks, missing)})
    with pytest.raises(ModelLoadError, match="needs the package dcu-fake-chunk-9 0.9.0, which is not installed"):
        embedded_gguf(tmp_path / "cache", None, broken)
    assert embedded_state(tmp_path / "cache", broken).startswith("MISSING")
    newer = EmbeddedModel(**{**fake_model.__dict__, "version": "1.0.0"})
    with pytest.raises(ModelLoadError, match="is version 0.9.0; the embedded default model needs 1.0.0"):
        embedded_gguf(tmp_path / "cache", None, newer)


def test_a_file_changed_after_the_check_is_checked_again_and_replaced(fake_model, tmp_path):
    path = embedded_gguf(tmp_path / "cache", None, fake_model)
    path.write_bytes(b"GGUF" + b"z" * 1000)  # truncated / tampered later
    messages = []
    assert embedded_gguf(tmp_path / "cache", messages.append, fake_model).read_bytes() == b"".join(PIECES)
    assert any("does not match" in m for m in messages)


def test_a_copied_in_file_with_the_right_checksum_is_accepted_after_one_check(fake_model, tmp_path):
    target = tmp_path / "cache" / "gguf" / "fake.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"".join(PIECES))
    messages = []
    assert embedded_gguf(tmp_path / "cache", messages.append, fake_model) == target
    assert messages == ["Checking fake.gguf (sha256)…"]


def test_the_real_default_is_pinned_exactly_where_it_is_installed_from():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(EMBEDDED_MODEL.requirements) <= set(project["project"]["dependencies"])
    assert sum(chunk.size for chunk in EMBEDDED_MODEL.chunks) == EMBEDDED_MODEL.size == 491_400_064
    assert EMBEDDED_MODEL.license == "Apache-2.0"
