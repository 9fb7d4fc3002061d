"""Read the scalar metadata of a GGUF file (architecture, chat template, context length).

The ``gguf`` package's ``GGUFReader`` builds a numpy view for every element of every array
field; the 262k-entry vocabulary of the embedded Gemma made it take over a minute on 2 busy
cores. We only need a few scalars, so this walks the header and skips arrays by their sizes:
milliseconds. The layout is GGUF v2/v3 (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from engine.errors import ModelLoadError

__all__ = ["read_gguf_metadata", "GgufMetadata"]

_MAGIC = b"GGUF"
_STRING, _ARRAY = 8, 9
# value type -> struct format of one element (strings and arrays are handled apart)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class GgufMetadata(dict):
    """Scalar key/value pairs of one file; arrays are left out."""

    @property
    def architecture(self) -> str:
        return str(self.get("general.architecture", ""))

    @property
    def chat_template(self) -> str | None:
        return self.get("tokenizer.chat_template") or None

    @property
    def context_length(self) -> int | None:
        value = self.get(f"{self.architecture}.context_length")
        return int(value) if value else None


def read_gguf_metadata(path: Path | str) -> GgufMetadata:
    """The file's scalar metadata; ModelLoadError if it is not a readable GGUF file."""
    path = Path(path)
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _parse(data)
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a readable GGUF file ({exc}). Check that the download is complete.") from exc


def _parse(data) -> GgufMetadata:
    if data[:4] != _MAGIC:
        raise ValueError("the file does not start with the GGUF magic bytes")
    version, _tensors, count = struct.unpack_from("<IQQ", data, 4)
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old")
    offset, meta = 24, GgufMetadata()
    for _ in range(count):
        key, offset = _string(data, offset)
        (kind,), offset = struct.unpack_from("<I", data, offset), offset + 4
        if kind == _ARRAY:
            offset = _skip_array(data, offset)
        elif kind == _STRING:
            meta[key], offset = _string(data, offset)
        else:
            fmt = _SCALARS[kind]
            meta[key], offset = struct.unpack_from(fmt, data, offset)[0], offset + struct.calcsize(fmt)
    return meta


def _string(data, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<Q", data, offset)
    start = offset + 8
    return bytes(data[start:start + length]).decode("utf-8"), start + length


def _skip_array(data, offset: int) -> int:
    kind, length = struct.unpack_from("<IQ", data, offset)
    offset += 12
    if kind == _STRING:
        for _ in range(length):
            (size,) = struct.unpack_from("<Q", data, offset)
            offset += 8 + size
        return offset
    if kind == _ARRAY:
        for _ in range(length):
            offset = _skip_array(data, offset)
        return offset
    return offset + length * struct.calcsize(_SCALARS[kind])
