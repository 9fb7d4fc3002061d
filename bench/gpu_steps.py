"""The measurements of ``bench.gpu``, each on one loaded ``Engine`` and returning one result row.

Every request goes through the engine users get (``Engine.stream_chat``: fair queue,
``TransformersBackend``, ``BatchRunner``, detokenizer); ``generate`` rows call transformers'
own ``model.generate`` on the same model and prompts, as the baseline. Greedy decoding without a
repetition penalty on both sides, so both do the same work per token. A deadline cancels streams
that would run past the benchmark's budget (the row then says so).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from bench.common import median
from bench.gpu_model import prompt_words

__all__ = ["Sizes", "Meter", "single", "generate_baseline", "streams", "ttft", "kv_reuse", "oom_recovery",
           "warm_up", "clear_kv"]


@dataclass(frozen=True)
class Sizes:
    """Token counts of the measurements (the full run vs --tiny)."""

    prompt_words: int = 128
    single_new: int = 128
    stream_new: int = 64
    ttft_new: int = 8
    turn_words: int = 96
    turn_new: int = 32
    repeats: int = 2
    oom_prompt: int = 7600  # a little under the 8192-token context the bench engine allows


class Meter:
    """Peak device memory over a block (process RSS on a CPU); requests reset the peak counter too,
    so the block's own maximum is combined with the requests' own peaks."""

    def __init__(self, device) -> None:
        self.device = device
        self.peak = 0

    def __enter__(self) -> Meter:
        from engine.generate import reset_peak_memory

        reset_peak_memory(self.device)
        return self

    def see(self, stats) -> None:
        if stats is not None:
            self.peak = max(self.peak, stats.peak_memory_bytes)

    def __exit__(self, *exc) -> None:
        from engine.device import memory_in_use

        self.peak = max(self.peak, memory_in_use(self.device)["peak"])


def _sync(device) -> None:
    if device.is_gpu:
        import torch

        torch.cuda.synchronize(torch.device(device.torch_device))


def clear_kv(engine) -> None:
    from engine.generate import release_memory

    kv = getattr(engine.backend, "kv", None)
    if kv is not None:
        kv.clear()
    release_memory()


def _params(new_tokens: int):
    from engine.config import SamplingParams

    return SamplingParams(temperature=0, repetition_penalty=1.0, max_new_tokens=new_tokens)


def _ask(engine, content: str, new_tokens: int, cancel: threading.Event | None = None,
         session_id: str | None = None, history: list[dict] | None = None):
    """One streamed request through the engine; returns (text, GenerationStats)."""
    from engine.stats import GenerationStats

    messages = (history or []) + [{"role": "user", "content": content}]
    parts, stats = [], None
    for item in engine.stream_chat(messages, _params(new_tokens), session_id=session_id, cancel=cancel):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            parts.append(item)
    return "".join(parts), stats


def _words_for(engine, total_tokens: int) -> int:
    """How many words make a prompt of ``total_tokens`` tokens with the chat template around them."""
    from engine.history import render_prompt_ids

    overhead = len(render_prompt_ids(engine.backend.tokenizer, [{"role": "user", "content": "w1"}])) - 1
    return max(1, total_tokens - overhead)


def warm_up(engine) -> None:
    """First calls pay one-off costs (kernels, cuBLAS handles, allocator growth)."""
    _ask(engine, prompt_words(16, 999), 4)
    clear_kv(engine)


def single(engine, sizes: Sizes, device) -> dict:
    runs = []
    with Meter(device) as meter:
        for repeat in range(sizes.repeats):
            clear_kv(engine)
            _, stats = _ask(engine, prompt_words(sizes.prompt_words, repeat), sizes.single_new)
            meter.see(stats)
            runs.append(stats)
    return {"tokens_per_s": round(median([s.tokens_per_s for s in runs]), 2),
            "ttft_s": round(median([s.ttft_s for s in runs]), 4), "prompt_tokens": runs[0].prompt_tokens,
            "completion_tokens": runs[0].completion_tokens, "peak_memory_bytes": meter.peak,
            "runs_tokens_per_s": [round(s.tokens_per_s, 2) for s in runs]}


def generate_baseline(engine, sizes: Sizes, device, batch: int = 1) -> dict:
    """transformers' ``model.generate`` on the same prompts: decode rate from a 1-token and an
    N-token run ((N-1) / (t_N - t_1), the engine's definition), TTFT from the 1-token run."""
    import torch

    from engine.history import render_prompt_ids

    model, tokenizer = engine.backend.model, engine.backend.tokenizer
    rows = [render_prompt_ids(tokenizer, [{"role": "user", "content": prompt_words(sizes.prompt_words, i)}])
            for i in range(batch)]
    ids = torch.tensor(rows, device=device.torch_device)  # equal lengths: one token per word, no padding
    new = sizes.single_new if batch == 1 else sizes.stream_new

    def timed(tokens: int) -> tuple[float, int]:
        _sync(device)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                 do_sample=False, repetition_penalty=1.0,
                                 pad_token_id=tokenizer.pad_token_id)
        _sync(device)
        return time.perf_counter() - started, out.shape[1] - ids.shape[1]

    timed(2)  # warm-up
    with Meter(device) as meter:
        first = median([timed(1)[0] for _ in range(sizes.repeats)])
        runs = [timed(new) for _ in range(sizes.repeats)]
    total, produced = median([r[0] for r in runs]), runs[0][1]
    end_to_end = batch * produced / total
    decode = batch * (produced - 1) / (total - first) if total > first and produced > 1 else None
    # One stream compares with the engine's decode rate; a batch with the streams' all-tokens / wall.
    rate = decode if batch == 1 and decode is not None else end_to_end
    row = {"tokens_per_s": round(rate, 2), "ttft_s": round(first, 4), "prompt_tokens": ids.shape[1],
           "completion_tokens": produced, "end_to_end_tokens_per_s": round(end_to_end, 2),
           "decode_tokens_per_s": round(decode, 2) if decode else None, "peak_memory_bytes": meter.peak}
    if batch == 1 and decode is None:
        row["note"] = "decode time not separable from the 1-token run (too short): end-to-end rate"
    return row


def streams(engine, sizes: Sizes, device, count: int, deadline: float) -> dict:
    """``count`` simultaneous streams with distinct prompts; aggregate tokens/s = all tokens / wall."""
    from bench.common import concurrent

    clear_kv(engine)
    cancels = [threading.Event() for _ in range(count)]
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), lambda: [c.set() for c in cancels])
    timer.daemon = True
    timer.start()
    runner = getattr(engine.backend, "runner", None)
    if runner is not None:
        runner.peak_batch = 0  # the largest batch of this run, not of the runner's whole life

    def one(i: int):
        try:
            return _ask(engine, prompt_words(sizes.prompt_words, 100 + i), sizes.stream_new, cancels[i])[1]
        except Exception as exc:  # re-raised below, after every stream has ended
            return exc

    try:
        with Meter(device) as meter:
            results, wall = concurrent(one, count)
            for stats in results:
                if isinstance(stats, Exception):
                    raise stats
                meter.see(stats)
    finally:
        timer.cancel()
    done = sum(s.completion_tokens for s in results)
    row = {"tokens_per_s": round(done / wall, 2), "ttft_s": round(median([s.ttft_s for s in results]), 4),
           "max_ttft_s": round(max(s.ttft_s for s in results), 4), "wall_s": round(wall, 2),
           "completion_tokens": done, "stream_tokens_per_s": round(median([s.tokens_per_s for s in results]), 2),
           "peak_memory_bytes": meter.peak, "peak_batch": getattr(runner, "peak_batch", None)}
    cut = sum(s.finish_reason == "cancelled" for s in results)
    if cut:
        row["note"] = f"{cut} of {count} streams cancelled at the budget's deadline"
    clear_kv(engine)
    return row


def ttft(engine, sizes: Sizes, device, prompt_tokens: int) -> dict:
    words = _words_for(engine, prompt_tokens)
    runs = []
    with Meter(device) as meter:
        for repeat in range(sizes.repeats):
            clear_kv(engine)  # a cold prompt: nothing to reuse
            _, stats = _ask(engine, prompt_words(words, 300 + repeat), sizes.ttft_new)
            meter.see(stats)
            runs.append(stats)
    first = median([s.ttft_s for s in runs])
    clear_kv(engine)
    return {"ttft_s": round(first, 4), "prompt_tokens": runs[0].prompt_tokens,
            "prefill_tokens_per_s": round(runs[0].prompt_tokens / first, 1) if first else None,
            "peak_memory_bytes": meter.peak}  # a few new tokens only: no decode rate worth showing


def kv_reuse(engine, sizes: Sizes, device, turns: int = 8) -> dict:
    """TTFT at turn 1 and turn ``turns`` of one chat with KV reuse, and turn ``turns`` without."""
    clear_kv(engine)
    history: list[dict] = []
    rows = []
    with Meter(device) as meter:
        for turn in range(turns):
            question = prompt_words(sizes.turn_words, 500 + turn)
            text, stats = _ask(engine, question, sizes.turn_new, session_id="bench-gpu-turns", history=history)
            meter.see(stats)
            rows.append({"ttft_s": round(stats.ttft_s, 4), "prompt_tokens": stats.prompt_tokens,
                         "cached_tokens": stats.cached_tokens})
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
        clear_kv(engine)
        last_question = history[-2]["content"]
        _, cold = _ask(engine, last_question, sizes.turn_new, history=history[:-2])
        meter.see(cold)
    clear_kv(engine)
    return {"ttft_s": rows[-1]["ttft_s"], "turn1_ttft_s": rows[0]["ttft_s"],
            "turn8_without_reuse_ttft_s": round(cold.ttft_s, 4), "prompt_tokens": rows[-1]["prompt_tokens"],
            "cached_tokens": rows[-1]["cached_tokens"], "turns": rows,
            "turn8_over_turn1": round(rows[-1]["ttft_s"] / rows[0]["ttft_s"], 2) if rows[0]["ttft_s"] else None,
            "peak_memory_bytes": meter.peak}


def oom_recovery(engine, sizes: Sizes, device) -> dict:
    """A request too big for the card gets our ``OutOfMemory``; the next request succeeds.

    The card is made "small" with ``torch.cuda.set_per_process_memory_fraction``: the limit is
    what is reserved now plus half-way between what a short request reserves and a long one
    allocates (both measured first, uncapped), so the long one cannot fit and the short one can.
    """
    import torch

    from engine.errors import OutOfMemory

    index = torch.device(device.torch_device).index or 0
    words = _words_for(engine, sizes.oom_prompt)

    def need(content_words: int, seed: int, new: int) -> tuple[int, int]:
        """(peak bytes allocated, peak bytes reserved) beyond what was in use before the request."""
        clear_kv(engine)
        allocated, reserved = torch.cuda.memory_allocated(index), torch.cuda.memory_reserved(index)
        torch.cuda.reset_peak_memory_stats(index)
        _ask(engine, prompt_words(content_words, seed), new)
        return (torch.cuda.max_memory_allocated(index) - allocated, torch.cuda.max_memory_reserved(index) - reserved)

    small = need(16, 700, 4)[1]  # the cap limits what the allocator reserves, in whole segments
    big = need(words, 701, 1)[0]  # at least this much must be reserved for the long request
    clear_kv(engine)
    if big < 2 * small + 4 * 1024**2:
        return {"status": "error", "reason": f"could not separate request sizes (short {small} B, long {big} B)"}
    total = torch.cuda.get_device_properties(index).total_memory
    limit = torch.cuda.memory_reserved(index) + (small + big) // 2
    torch.cuda.set_per_process_memory_fraction(limit / total, index)
    try:
        try:
            _ask(engine, prompt_words(words, 702), 1)
            error = None
        except OutOfMemory as exc:
            error = str(exc)
        try:
            after = _ask(engine, prompt_words(16, 703), 4)[1].completion_tokens
        except OutOfMemory:
            after = 0
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, index)
        clear_kv(engine)
    ok = error is not None and after == 4
    return {"status": "measured" if ok else "error", "recovered": ok, "error_message": error,
            "next_request_tokens": after, "cap_bytes": limit, "short_request_bytes": small,
            "long_request_bytes": big, "prompt_tokens": sizes.oom_prompt,
            **({} if ok else {"reason": "the long request did not raise OutOfMemory" if error is None
                              else "the request after the OutOfMemory did not complete"})}
