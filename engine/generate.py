"""One streaming generator: text deltas, then a final ``GenerationStats``.

A producer computes token ids on the device: ``model.generate`` in a worker thread here (used
for requests the batch runner cannot take, e.g. prompt-lookup decoding), or the batch runner
(``engine/batching.py``). ``stream_tokens`` turns them into text deltas for the caller. The
producer checks a cancel event every decoding step, so closing the consumer (a Stop button, a
dropped HTTP client) ends device work within one step. The producer's exception is re-raised in
the caller; device out-of-memory becomes ``OutOfMemory`` after memory is released.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from engine.answer_text import AnswerText
from engine.config import SamplingParams
from engine.device import DeviceInfo, memory_in_use
from engine.errors import EngineError, GenerationError, OutOfMemory
from engine.kv_cache import new_cache
from engine.stats import GenerationStats
from engine.templates import PromptFormat

__all__ = ["stream_generate", "stream_tokens", "TokenFeed", "DONE", "eos_ids", "is_oom", "release_memory",
           "reset_peak_memory"]

DONE = object()  # ends a TokenFeed queue


class _IdStreamer(BaseStreamer):
    """Forwards newly generated token ids to a queue (the first ``put`` is the prompt)."""

    def __init__(self, sink: queue.Queue) -> None:
        self.sink = sink
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.sink.put(value.reshape(-1).tolist())

    def end(self) -> None:
        pass  # the worker signals the end itself, after generate() returns or raises


class _CancelCriterion(StoppingCriteria):
    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.cancel.is_set(), dtype=torch.bool, device=input_ids.device)


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def reset_peak_memory(device: DeviceInfo) -> None:
    if device.is_gpu:
        torch.cuda.reset_peak_memory_stats(torch.device(device.torch_device))


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _sampling_kwargs(params: SamplingParams) -> dict:
    kwargs: dict = {"max_new_tokens": params.max_new_tokens, "repetition_penalty": params.repetition_penalty}
    if params.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
    if params.prompt_lookup_num_tokens:
        kwargs["prompt_lookup_num_tokens"] = params.prompt_lookup_num_tokens
    return kwargs


@dataclass
class TokenFeed:
    """What a producer hands ``stream_tokens``: lists of new token ids on ``queue``, then ``DONE``.

    ``failure`` holds the producer's exception, if any; ``wait`` returns once the producer has
    stopped device work for this request (at most one decoding step after ``cancel`` is set).
    """

    queue: queue.Queue
    failure: list
    wait: Callable[[], None]


def eos_ids(model, stop_token_ids: Sequence[int] = ()) -> list[int]:
    return [i for i in {*stop_token_ids, *_as_list(model.generation_config.eos_token_id)} if i is not None]


def stream_generate(
    model,
    tokenizer,
    prompt_ids: list[int],
    params: SamplingParams,
    device: DeviceInfo,
    cancel: threading.Event,
    stop_strings: Sequence[str] = (),
    stop_token_ids: Sequence[int] = (),
    past_key_values=None,
    cached_tokens: int = 0,
    on_finish: Callable[[list[int], object], None] | None = None,
    fmt: PromptFormat | None = None,
    extra_inputs: dict | None = None,
) -> Iterator[str | GenerationStats]:
    """Yield text deltas, then one ``GenerationStats``; ``model.generate`` runs in a worker thread.

    ``past_key_values`` holds the KV of the first ``cached_tokens`` prompt tokens (only the rest
    is prefilled). ``on_finish(ids, cache)`` receives the cache afterwards, for reuse.
    ``extra_inputs``: more model inputs, e.g. a vision-language model's ``pixel_values``.
    """
    started = time.perf_counter()
    reset_peak_memory(device)
    sink: queue.Queue = queue.Queue()
    failure: list[BaseException] = []
    input_ids = torch.tensor([prompt_ids], device=device.torch_device)
    eos = eos_ids(model, stop_token_ids)
    cache = past_key_values if past_key_values is not None else (new_cache() if on_finish else None)

    def work() -> None:
        try:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                output = model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    streamer=_IdStreamer(sink),
                    stopping_criteria=StoppingCriteriaList([_CancelCriterion(cancel)]),
                    eos_token_id=eos,
                    pad_token_id=tokenizer.pad_token_id,
                    **({"cache": cache} if cache is not None else {}),
                    **(extra_inputs or {}),
                    **_sampling_kwargs(params),
                )
            if on_finish is not None:
                held = cache.get_seq_length()
                on_finish(output[0, :held].tolist(), cache)
        except BaseException as exc:  # re-raised in the consumer below
            failure.append(exc)
        finally:
            sink.put(DONE)

    worker = threading.Thread(target=work, name="dcu-chat-generate", daemon=True)
    worker.start()
    feed = TokenFeed(sink, failure, worker.join)
    yield from stream_tokens(feed, tokenizer, len(prompt_ids), params, device, cancel, stop_strings, eos,
                             cached_tokens, started, fmt=fmt)


def stream_tokens(
    feed: TokenFeed,
    tokenizer,
    prompt_tokens: int,
    params: SamplingParams,
    device: DeviceInfo,
    cancel: threading.Event,
    stop_strings: Sequence[str],
    eos: Sequence[int],
    cached_tokens: int,
    started: float,
    fmt: PromptFormat | None = None,
) -> Iterator[str | GenerationStats]:
    """Turn a producer's token ids into text deltas (stop strings, split characters), then stats.

    ``fmt`` adds the prompt format's own end-of-answer rules (``PromptFormat.end_of_answer``):
    base models run on past their answer, and the format knows where it ended.
    """
    eos = set(eos)
    stats = GenerationStats(prompt_tokens=prompt_tokens, cached_tokens=cached_tokens, device=device.kind)
    generated: list[int] = []
    answer = AnswerText(fmt, stop_strings)
    stopped_by_string = False  # a stop string or the format's end-of-answer rule ended it
    try:
        while (item := feed.queue.get()) is not DONE:
            if not stats.ttft_s:
                stats.ttft_s = time.perf_counter() - started
            generated.extend(t for t in item if t not in eos)
            stats.completion_tokens += len(item)
            if answer.ended:
                continue  # drain until the producer notices the cancel
            delta = answer.update(tokenizer.decode(generated, skip_special_tokens=True))
            if answer.ended:
                stopped_by_string = True
                cancel.set()
            if delta:
                yield delta
        if feed.failure:
            raise feed.failure[0]
        delta = answer.finish(tokenizer.decode(generated, skip_special_tokens=True))
        if delta:
            yield delta
    except Exception as exc:
        if is_oom(exc):
            release_memory()
            raise OutOfMemory(
                f"The {device.kind.upper()} ran out of memory for this request ({prompt_tokens} prompt tokens). "
                "Memory was released; try a shorter conversation, fewer max new tokens, or --quantization 4bit."
            ) from exc
        if isinstance(exc, EngineError):
            raise
        raise GenerationError(f"Generation failed: {exc}") from exc
    finally:
        cancelled = cancel.is_set() and not stopped_by_string
        cancel.set()
        feed.wait()  # at most one decoding step: the producer checks the event every step
    stats.total_s = time.perf_counter() - started
    if cancelled:
        stats.finish_reason = "cancelled"
    elif not stopped_by_string and stats.completion_tokens >= params.max_new_tokens:
        stats.finish_reason = "length"
    stats.peak_memory_bytes = memory_in_use(device)["peak"]
    yield stats


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
