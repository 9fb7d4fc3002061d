"""llama.cpp in this process (``--backend llamacpp``; what ``auto`` picks for GGUF models on the CPU).

xllamacpp wraps llama.cpp's own server: continuous batching over ``n_parallel`` slots, a prompt
cache per slot plus a host-memory cache of idle conversations (``cache_ram_mib``), and a
streaming callback whose ``True`` return ends a request (so a stop ends the device work within
one decoding step). We render prompts ourselves (``engine.templates``, the same text on every
backend), tokenize with llama.cpp's tokenizer, trim the history by the rule of
``engine.history`` and send token ids to the completion path, never llama.cpp's chat endpoint.

xllamacpp also starts llama.cpp's HTTP server on a random loopback port; we use only its
``/tokenize`` route (the Python API has no tokenizer) and lock it with a random API key.
"""

from __future__ import annotations

import logging
import queue
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psutil

from engine.answer_text import AnswerText
from engine.backends.base import BackendState, EngineInfo
from engine.backends.llamacpp_build import llamacpp_build
from engine.backends.llamacpp_lookup import configure as configure_lookup
from engine.backends.llamacpp_lookup import draft_counts
from engine.backends.llamacpp_vision import chat_request, mmproj_source
from engine.config import DEFAULT_CONTEXT_CAP, EngineConfig, SamplingParams
from engine.errors import EngineError, GenerationError, ModelLoadError, OutOfMemory, PromptTooLong
from engine.gguf_meta import read_gguf_metadata
from engine.history import IMAGE_TOKENS_ESTIMATE, TrimmedPrompt, answer_reserve, fit_prompt, prompt_text
from engine.images import has_images
from engine.reasoning import opened_thinking, template_thinks
from engine.stats import GenerationStats
from engine.templates import prompt_format

__all__ = ["LlamaCppBackend", "gguf_source"]

log = logging.getLogger(__name__)
_POLL_S = 0.05  # how often a consumer waiting for llama.cpp looks at the cancel event
_DONE = object()


def gguf_source(config: EngineConfig, progress: Callable[[str], None] | None = None) -> tuple[Path, str]:
    """(GGUF file, display name) for the configured model: the embedded default or a ``.gguf`` path."""
    from engine.embedded import EMBEDDED_MODEL, embedded_gguf

    if config.model is None:
        return embedded_gguf(config.cache_dir, progress), EMBEDDED_MODEL.model_id
    path = Path(config.model).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ModelLoadError(f"--backend llamacpp serves GGUF files; {path} is not one. Use --backend transformers "
                             "for Hugging Face model directories.")
    if not path.is_file():
        raise ModelLoadError(f"GGUF file {path} does not exist. Check the path passed to --model.")
    return path, path.name


def _file_type(meta) -> str | None:
    value = meta.get("general.file_type")
    if value is None:
        return None
    try:
        from gguf import LlamaFileType

        return LlamaFileType(int(value)).name.removeprefix("MOSTLY_")
    except (ImportError, ValueError):
        return f"type {value}"


def _restore_signals(before: dict) -> None:
    """llama.cpp's server installs its own SIGINT/SIGTERM handlers; give Python (and uvicorn) theirs back."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in before.items():
        if handler is not None:
            signal.signal(sig, handler)


class LlamaCppBackend:
    sees_images = False  # True with a multimodal projector (--mmproj)
    enforces_json_schema = True  # llama.cpp turns a JSON schema into a grammar that constrains sampling

    def __init__(self, server, info: EngineInfo, fmt, slots: int, cache_prompt: bool, url: str, key: str,
                 gguf_path: Path | None = None, sees_images: bool = False) -> None:
        self.server = server
        self.gguf_path = gguf_path
        self.sees_images = sees_images  # a multimodal projector is loaded: images go through the chat path
        self.info = info
        self.prompt_format = fmt
        self.capacity = slots  # requests the engine lets in at once: one per llama.cpp slot
        self.cache_prompt = cache_prompt
        # "Connection: close": llama.cpp's HTTP server (cpp-httplib) keeps each of its few worker
        # threads on one keep-alive connection until that idles out (5 s), so concurrent requests on
        # more pooled connections than workers waited 5 s for their tokens: the 4-stream straggler.
        # A fresh loopback connection per call costs ~0.3 ms.
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}", "Connection": "close"},
                                  timeout=60)

    @classmethod
    def load(cls, config: EngineConfig, progress: Callable[[str], None] | None = None, *,
             lookup_tokens: int | None = None, flash_attn: bool | None = None) -> LlamaCppBackend:
        """Start llama.cpp on the configured GGUF.

        ``lookup_tokens``: server-wide prompt lookup drafting up to that many tokens (0: off; default
        ``config.llamacpp_prompt_lookup``); ``flash_attn``: the attention
        kernel (None: llama.cpp's choice, off when lookup is on). See ``llamacpp_lookup``.
        """
        from engine.device import resolve_device

        progress = progress or (lambda message: log.info("%s", message))
        build = llamacpp_build()
        if not build.available:
            raise ModelLoadError(f"--backend llamacpp needs xllamacpp: {build.error}")
        import xllamacpp

        path, name = gguf_source(config, progress)
        projector = mmproj_source(config)
        meta = read_gguf_metadata(path)
        device = resolve_device(config.device, config.strict_device)
        layers = 0
        if device.is_gpu and build.offloads:
            layers = -1 if config.gpu_layers is None else config.gpu_layers
        if not layers and path.stat().st_size > psutil.virtual_memory().available:
            raise OutOfMemory(f"{name} needs {path.stat().st_size / 1024**3:.1f} GiB but only "
                              f"{psutil.virtual_memory().available / 1024**3:.1f} GiB of memory is free. "
                              "Close other programs or choose a smaller (more quantized) GGUF.")
        context = min(meta.context_length or DEFAULT_CONTEXT_CAP, config.max_context or DEFAULT_CONTEXT_CAP)
        slots = config.max_batch
        key = secrets.token_hex(16)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)  # a str: xllamacpp does not take a Path
        params.n_ctx = context
        params.n_parallel = slots
        params.kv_unified = True  # slots share one KV buffer, so one long conversation may use all of it
        params.n_gpu_layers = layers
        params.cache_ram_mib = config.kv_cache_bytes // 1024**2  # idle conversations kept in RAM (0: off)
        params.api_keys = [key]
        params.endpoint_metrics = True
        params.n_threads_http = 2
        params.verbosity = 0 if log.getEffectiveLevel() > logging.DEBUG else 3
        if lookup_tokens is None:
            lookup_tokens = config.llamacpp_prompt_lookup
        configure_lookup(params, lookup_tokens, flash_attn)
        if projector is not None:
            params.mmproj.path = str(projector)
            params.mmproj_use_gpu = bool(layers)
        where = f"{layers if layers > 0 else 'all'} layers on {device.kind}" if layers else "CPU"
        progress(f"Loading {name} with llama.cpp ({where}, {slots} slots, context {context})…")
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server = xllamacpp.Server(params)
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {path} ({exc}). Check that the file is a complete GGUF of an "
                f"architecture this llama.cpp build supports (the file says {meta.architecture or 'nothing'}) "
                "and that there is enough free memory."
            ) from exc
        finally:
            _restore_signals(before)
        fmt = prompt_format(meta.chat_template, meta.architecture)
        notes = [device.warning] if device.warning else []
        if device.is_gpu and not layers:
            notes.append(f"This llama.cpp build cannot offload to the {device.kind.upper()}; running on the CPU.")
        if fmt.completion:
            notes.append(f"{name} has no chat template (a base model); prompts use a plain completion format.")
        if projector is not None:
            notes.append(f"{name} reads images through its multimodal projector {projector.name}.")
        if lookup_tokens:
            notes.append(f"Prompt lookup drafts up to {lookup_tokens} tokens for every request (flash attention off).")
        info = EngineInfo(
            model=name, backend="llamacpp", device=device.kind if layers else "cpu",
            device_name=device.name if layers else _cpu_name(), dtype="gguf", quantization=_file_type(meta),
            context_length=context, notes=tuple(notes), backend_detail=build.describe(),
        )
        return cls(server, info, fmt, slots, config.kv_cache_bytes > 0, server.listening_address, key, path,
                   sees_images=projector is not None)

    def close(self) -> None:
        """Stop llama.cpp's loop and free the model (the Server's destructor joins its thread)."""
        self._http.close()
        self.server = None

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """llama.cpp's token ids; ``special`` adds BOS where the model wants it."""
        response = self._http.post("/tokenize", json={"content": text, "add_special": special, "parse_special": True})
        response.raise_for_status()
        return response.json()["tokens"]

    def state(self) -> BackendState:
        return BackendState()  # batching and caches are the server's own, not visible here

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _text(self, messages: list[dict], params: SamplingParams) -> str:
        # BOS comes from the tokenizer (add_special), so the rendered text must not carry it too.
        return prompt_text(self.prompt_format, messages, "", "", params.tools, params.template_kwargs)

    def prompt_ids(self, messages: list[dict], params: SamplingParams) -> list[int]:
        """The token ids llama.cpp gets for ``messages`` (untrimmed), BOS included."""
        return self.tokenize(self._text(messages, params), special=True)

    def _request(self, ids: list[int], params: SamplingParams) -> dict:
        request = {
            "prompt": ids, "stream": True, "max_tokens": params.max_new_tokens,
            "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k,
            "min_p": 0.0,  # llama.cpp's default 0.05 would make it sample differently from the other backends
            "repeat_penalty": params.repetition_penalty, "seed": -1 if params.seed is None else params.seed,
            "stop": [*self.prompt_format.stop_strings, *params.stop], "cache_prompt": self.cache_prompt,
            "timings_per_token": True,  # every chunk carries llama.cpp's counters, also when we stop early
            "return_progress": True,  # chunks during prompt processing, so a cancel is seen there too
        }
        if params.json_schema is not None:
            request["json_schema"] = params.json_schema
        return request

    def _fit(self, messages: list[dict], params: SamplingParams) -> tuple[TrimmedPrompt, dict]:
        """The trimmed prompt and the request for it: token ids on the completion path; with images, the chat
        path (their tokens estimated, as the projector decides how many each takes)."""
        reserve = answer_reserve(self.info.context_length, params.max_new_tokens)
        if not has_images(messages):
            prompt = fit_prompt(messages, self.info.context_length, reserve, lambda m: self.prompt_ids(m, params))
            return prompt, self._request(prompt.ids, params)

        def encode(candidate: list[dict]) -> list[int]:
            images = sum(len(m.get("images") or ()) for m in candidate)
            return self.prompt_ids(candidate, params) + [0] * (IMAGE_TOKENS_ESTIMATE * images)

        prompt = fit_prompt(messages, self.info.context_length, reserve, encode)
        return prompt, chat_request(prompt.messages, params, self.cache_prompt)

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        session_id: str | None,
        cancel: threading.Event,
    ) -> Iterator[str | GenerationStats]:
        if self.server is None:
            raise GenerationError("The llama.cpp backend was closed; restart the server.")
        started = time.perf_counter()  # tokenizing (a loopback HTTP call) is part of the time to first token
        prompt, request = self._fit(messages, params)
        handle = self.server.handle_chat_completions if "messages" in request else self.server.handle_completions
        opened = opened_thinking(self._text(prompt.messages, params)) \
            if template_thinks(self.prompt_format.chat_template) else None
        chunks: queue.Queue = queue.Queue()
        done = threading.Event()  # set by us: the answer ended (format rule) or the consumer left

        def on_chunk(chunk: dict) -> bool:
            chunks.put(chunk)
            return done.is_set() or cancel.is_set()  # True: llama.cpp ends the request now

        def work() -> None:
            try:
                handle(request, on_chunk)
            except Exception as exc:  # handed to the consumer, which raises it as our error
                chunks.put(exc)
            finally:
                chunks.put(_DONE)

        worker = threading.Thread(target=work, name="dcu-chat-llamacpp", daemon=True)
        worker.start()
        stats = GenerationStats(prompt_tokens=len(prompt.ids), device=self.info.device,
                                trimmed_messages=prompt.dropped)
        fmt, text, finish, tokens = self.prompt_format, "", None, 0
        if params.json_schema is not None:
            # Grammar-constrained output ends where the grammar does; the base-model rules (a blank
            # line, a repeated line) would cut pretty-printed JSON in the middle.
            fmt = replace(fmt, completion=False)
        answer = AnswerText(fmt)  # llama.cpp applies the stop strings itself
        try:
            if opened:  # the template opened a think block: say so, as if the model had written it
                yield opened
            while True:
                try:
                    item = chunks.get(timeout=_POLL_S)
                except queue.Empty:
                    if cancel.is_set():
                        break
                    continue
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    raise GenerationError(f"llama.cpp failed while generating: {item}") from item
                if "error" in item:
                    raise _error(item["error"], len(prompt.ids))
                if cancel.is_set():
                    break
                _read_timings(item, stats)
                choice = (item.get("choices") or [{}])[0]
                delta = choice.get("text") or (choice.get("delta") or {}).get("content") or ""
                if delta:
                    tokens += 1
                    stats.ttft_s = stats.ttft_s or time.perf_counter() - started
                text += delta
                shown = answer.update(text)
                if shown:
                    yield shown
                if answer.ended:  # a base model ran past its answer: end it here
                    done.set()
                    finish = "stop"
                    break
                finish = choice.get("finish_reason") or finish
            if finish is not None and not cancel.is_set():
                rest = answer.finish(text)
                if rest:
                    yield rest
        finally:
            done.set()
            worker.join()  # returns at llama.cpp's next chunk: at most one decoding step
        stats.completion_tokens = max(stats.completion_tokens, tokens)
        stats.total_s = time.perf_counter() - started
        if cancel.is_set() and finish is None:
            stats.finish_reason = "cancelled"
        elif finish == "length":
            stats.finish_reason = "length"
        stats.extra["backend"] = "llamacpp"
        if self.info.device == "cpu":  # as on transformers' CPU path: the process's resident memory
            stats.peak_memory_bytes = psutil.Process().memory_info().rss
        yield stats


def _read_timings(chunk: dict, stats: GenerationStats) -> None:
    timings = chunk.get("timings")
    if timings:
        stats.cached_tokens = int(timings.get("cache_n", 0))
        drafts = draft_counts(timings)
        if drafts:  # prompt lookup is on: how many tokens it proposed and how many llama.cpp kept
            stats.extra["draft_tokens"], stats.extra["draft_accepted"] = drafts
        stats.completion_tokens = int(timings.get("predicted_n", 0))
        if timings.get("predicted_n", 0) > 1 and timings.get("predicted_per_second"):
            stats.decode_tokens_per_s = float(timings["predicted_per_second"])
    usage = chunk.get("usage")
    if usage:
        stats.completion_tokens = int(usage.get("completion_tokens", stats.completion_tokens))


def _error(error: dict, prompt_tokens: int) -> EngineError:
    message = str(error.get("message", error))
    if error.get("type") == "exceed_context_size_error":
        return PromptTooLong(f"The prompt ({prompt_tokens} tokens) does not fit llama.cpp's context: {message}. "
                             "Shorten the message or start a new conversation.")
    if "memory" in message.lower():
        return OutOfMemory(f"llama.cpp ran out of memory for this request: {message}. Try a shorter conversation "
                           "or fewer max new tokens.")
    return GenerationError(f"llama.cpp could not answer: {message}")


def _cpu_name() -> str:
    import os
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
