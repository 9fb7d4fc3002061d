"""engine/gguf_meta.py reads a GGUF file's scalar metadata and skips its arrays."""

from __future__ import annotations

import pytest

from engine.errors import ModelLoadError
from engine.gguf_meta import read_gguf_metadata

gguf = pytest.importorskip("gguf")


def test_reads_scalars_and_skips_arrays(tmp_path):
    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(4096)
    writer.add_chat_template("{{ messages }}")
    writer.add_token_list(["<s>", "a", "b", "中"])  # a string array before later scalars
    writer.add_token_scores([0.0, 1.0, 2.0, 3.0])
    writer.add_bool("x.flag", True)
    writer.add_float32("x.eps", 0.5)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    meta = read_gguf_metadata(path)
    assert meta.architecture == "llama" and meta.context_length == 4096
    assert meta.chat_template == "{{ messages }}"
    assert meta["x.flag"] is True and meta["x.eps"] == 0.5
    assert "tokenizer.ggml.tokens" not in meta


def test_a_file_without_the_magic_is_a_human_error(tmp_path):
    path = tmp_path / "bad.gguf"
    path.write_bytes(b"GGML" + bytes(40))
    with pytest.raises(ModelLoadError, match="not a readable GGUF"):
        read_gguf_metadata(path)
