"""Decode concurrent requests together, so they share the forward passes.

Decoding is memory-bound: one step reads every weight once whether it computes one token or
eight, so running the active requests as one batch multiplies throughput. ``BatchRunner`` owns
one thread that

1. prefills each new request on its own (reusing a cached prefix when given one), samples its
   first token and streams it right away;
2. joins it to the running batch: per-request KV caches are left-padded into one
   ``DynamicCache`` and an attention mask hides the padding; position ids stay per request;
3. decodes the batch one token per step; each request samples with its own parameters and seed
   (``engine.sampling.Sampler``), stops on its own EOS, length or cancel event;
4. takes finished requests out (re-packing the batch) and hands their KV cache to ``on_finish``
   for reuse by a later turn.

Requests never see each other's tokens: rows are independent except for sharing matmuls (and
the int8 layers quantize each row on its own). A device error fails the requests of that batch
and the runner keeps serving. The text side (stop strings, deltas, stats) is
``engine.generate.stream_tokens``.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from engine.config import SamplingParams
from engine.generate import DONE, TokenFeed, release_memory
from engine.kv_cache import new_cache
from engine.sampling import Sampler

__all__ = ["BatchRunner", "Job"]

log = logging.getLogger(__name__)
_STOP = object()  # put on the inbox by close()


@dataclass(eq=False)
class Job:
    """One request handed to the runner. ``cache`` holds the KV of the first ``cached_tokens`` ids."""

    prompt_ids: list[int]
    params: SamplingParams
    eos: frozenset[int]
    cancel: threading.Event
    cache: object | None = None
    cached_tokens: int = 0
    on_finish: Callable[[list[int], object], None] | None = None
    queue: queue.Queue = field(default_factory=queue.Queue)
    failure: list = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    generated: list[int] = field(default_factory=list)
    length: int = 0  # tokens whose KV is in the cache
    pad: int = 0  # left padding of this row in the batch
    sampler: Sampler | None = None
    constraint: object | None = None  # engine/constrained.JsonConstraint for structured output

    def feed(self) -> TokenFeed:
        return TokenFeed(self.queue, self.failure, self.done.wait)

    @property
    def finished(self) -> bool:
        last = self.generated[-1] if self.generated else None
        return last in self.eos or len(self.generated) >= self.params.max_new_tokens or self.cancel.is_set()

    def all_ids(self) -> list[int]:
        return self.prompt_ids + self.generated


def _layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(keys, values) for keys, values, *_ in cache]


def _pack(rows: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> tuple[object, list[int]]:
    """Left-pad per-row KV (each [1, heads, len, dim]) into one cache; returns it and the pads."""
    from transformers import DynamicCache

    lengths = [row[0][0].shape[-2] for row in rows]
    longest = max(lengths)
    pads = [longest - n for n in lengths]
    layers = []
    for index in range(len(rows[0])):
        keys = torch.cat([F.pad(row[index][0], (0, 0, pad, 0)) for row, pad in zip(rows, pads, strict=True)])
        values = torch.cat([F.pad(row[index][1], (0, 0, pad, 0)) for row, pad in zip(rows, pads, strict=True)])
        layers.append((keys, values))
    return DynamicCache(ddp_cache_data=layers), pads


class BatchRunner:
    """A decoding thread shared by every batchable request of one model."""

    @staticmethod
    def supports(model) -> bool:
        """Models written for transformers' current cache API (most; not old remote-code models)."""
        try:
            names = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            return False
        return all(name in names for name in ("cache", "position_ids", "attention_mask", "logits_to_keep"))

    def __init__(self, model, max_batch: int = 8, device: str = "cpu", idle_exit_s: float = 30.0) -> None:
        self.model = model
        self.max_batch = max_batch
        self.device = device
        self.idle_exit_s = idle_exit_s  # an idle runner ends its thread (and lets go of the model)
        self.peak_batch = 0  # largest batch decoded so far (tests and the System tab read it)
        self._inbox: queue.Queue[Job] = queue.Queue()
        self._waiting: list[Job] = []
        self._rows: list[Job] = []
        self._cache = None
        self._gate = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> int:
        return len(self._rows)

    @property
    def pending(self) -> int:
        """Jobs submitted but not yet decoding."""
        return self._inbox.qsize() + len(self._waiting)

    def submit(self, job: Job) -> TokenFeed:
        """Queue a job; its token ids arrive on the returned feed."""
        with self._start_lock:
            self._inbox.put(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="dcu-chat-batch", daemon=True)
                self._thread.start()
        return job.feed()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """End the runner thread once the jobs already submitted are done (a later submit restarts it)."""
        with self._start_lock:
            thread = self._thread
            if thread is not None and thread.is_alive():
                self._inbox.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the runner between steps (jobs submitted meanwhile start together)."""
        with self._gate:
            yield

    # -- the runner thread ------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            if not self._rows and not self._waiting:
                try:
                    self._waiting.append(self._inbox.get(timeout=self.idle_exit_s))
                except queue.Empty:
                    with self._start_lock:  # submit() starts a new thread if a job comes after this
                        if self._inbox.empty():
                            self._thread = None
                            return
                    continue
            with self._gate, torch.inference_mode():
                while True:
                    try:
                        self._waiting.append(self._inbox.get_nowait())
                    except queue.Empty:
                        break
                if _STOP in self._waiting:
                    self._waiting.remove(_STOP)
                    if not self._rows and not self._waiting:
                        with self._start_lock:
                            self._thread = None
                        return
                    self._inbox.put(_STOP)  # finish the running jobs first
                room = self.max_batch - len(self._rows)
                admitted, self._waiting = self._waiting[:room], self._waiting[room:]
                try:
                    self._admit(admitted)
                    if self._rows:
                        self._step()
                except Exception as exc:  # a device error: fail this batch, keep serving
                    log.warning("Batch step failed: %s", exc)
                    rows, self._rows, self._cache = self._rows, [], None
                    for job in rows:
                        self._fail(job, exc)
                    release_memory()

    def _admit(self, jobs: list[Job]) -> None:
        joining: list[tuple[Job, object]] = []
        for job in jobs:
            if job.cancel.is_set():
                self._finish(job, None)
                continue
            try:
                cache = self._prefill(job)
            except Exception as exc:
                self._fail(job, exc)
                release_memory()
                continue
            if job.finished:
                self._finish(job, cache)
            else:
                joining.append((job, cache))
        if joining:
            rows = [self._row_layers(i) for i in range(len(self._rows))]
            rows += [_layers(cache) for _, cache in joining]
            self._repack(self._rows + [job for job, _ in joining], rows)

    def _prefill(self, job: Job):
        cache = job.cache if job.cache is not None else new_cache()
        start = job.cached_tokens
        ids = torch.tensor([job.prompt_ids[start:]], device=self.device)
        positions = torch.arange(start, len(job.prompt_ids), device=self.device)[None]
        out = self.model(input_ids=ids, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
        job.cache = None  # the runner owns the KV from here
        job.length = len(job.prompt_ids)
        job.sampler = Sampler(job.params, self.device, job.constraint)
        self._emit(job, out.logits[:, -1, :])
        return cache

    def _emit(self, job: Job, logits: torch.Tensor) -> None:
        needs_ids = job.sampler.penalty is not None  # only the repetition penalty looks at earlier tokens
        ids = torch.tensor([job.all_ids()], device=logits.device) if needs_ids else None
        token = job.sampler(logits, ids)
        job.generated.append(token)
        job.queue.put([token])

    def _step(self) -> None:
        finished = [job for job in self._rows if job.cancel.is_set()]
        if finished:
            self._retire(finished)
            if not self._rows:
                return
        rows = self._rows
        ids = torch.tensor([[job.generated[-1]] for job in rows], device=self.device)
        positions = torch.tensor([[job.length] for job in rows], device=self.device)
        mask = None
        if any(job.pad for job in rows):
            width = self._cache.get_seq_length() + 1
            pads = torch.tensor([job.pad for job in rows], device=self.device)
            mask = (torch.arange(width, device=self.device)[None] >= pads[:, None]).long()
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=self._cache,
                         use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :]
        for index, job in enumerate(rows):
            job.length += 1
            self._emit(job, logits[index:index + 1])
        self.peak_batch = max(self.peak_batch, len(rows))
        finished = [job for job in rows if job.finished]
        if finished:
            self._retire(finished)

    def _row_layers(self, index: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        pad = self._rows[index].pad
        return [(k[index:index + 1, :, pad:], v[index:index + 1, :, pad:]) for k, v in _layers(self._cache)]

    def _retire(self, finished: list[Job]) -> None:
        keep = [i for i, job in enumerate(self._rows) if job not in finished]
        done = [(job, _pack([self._row_layers(i)])[0] if job.on_finish is not None else None)  # unpadded copies
                for i, job in enumerate(self._rows) if job in finished]
        self._repack([self._rows[i] for i in keep], [self._row_layers(i) for i in keep])
        for job, cache in done:
            self._finish(job, cache)

    def _repack(self, jobs: list[Job], rows: list) -> None:
        self._rows = jobs
        if not jobs:
            self._cache = None
            return
        self._cache, pads = _pack(rows)
        for job, pad in zip(jobs, pads, strict=True):
            job.pad = pad

    def _finish(self, job: Job, cache) -> None:
        try:
            if cache is not None and job.on_finish is not None and not job.failure:
                job.on_finish(job.all_ids()[:job.length], cache)
        except Exception as exc:  # keeping a cache for later is optional; never fail the answer over it
            log.warning("Could not keep the KV cache for reuse: %s", exc)
        finally:
            job.queue.put(DONE)
            job.done.set()

    def _fail(self, job: Job, exc: BaseException) -> None:
        if job.done.is_set():
            return
        job.failure.append(exc)
        job.queue.put(DONE)
        job.done.set()
