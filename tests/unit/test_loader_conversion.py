"""engine.loader.convert_gguf: a second process finishing the same conversion first is not an error."""

from __future__ import annotations

import json

import pytest

from engine import loader


class _Saved:
    """Stands in for a model or tokenizer: ``save_pretrained`` writes a file and lets ``during`` run."""

    def __init__(self, during=None):
        self.during = during
        self.config = type("Config", (), {})()

    def save_pretrained(self, path):
        (path / "config.json").write_text(json.dumps({"from": "this process"}))
        if self.during:
            self.during()


def test_a_conversion_finished_by_another_process_is_used(tmp_path, monkeypatch):
    import transformers

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    cache = tmp_path / "cache"
    out = loader._cached_conversion_dir(gguf, cache)

    def other_process_finishes():  # while we save, the other process renames its copy into place
        out.mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"from": "the other process"}))
        (out / "weights").write_text("x")  # a non-empty directory: os.replace cannot overwrite it

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: _Saved())
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: _Saved(during=other_process_finishes))
    assert loader.convert_gguf(gguf, cache, progress=lambda message: None) == out
    assert json.loads((out / "config.json").read_text()) == {"from": "the other process"}
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # our temporary copy is gone


def test_a_failed_rename_without_a_finished_conversion_still_fails(tmp_path, monkeypatch):
    import os

    import transformers

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: _Saved())
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: _Saved())

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        loader.convert_gguf(gguf, tmp_path / "cache", progress=lambda message: None)
