"""A remote OpenAI-compatible server as a backend (``--backend openai --base-url URL``).

Anything that speaks ``/v1/chat/completions`` works: vLLM's server, llama.cpp's server, Ollama,
or another dcu-chat. We stream over plain httpx (a runtime dependency; the ``openai`` package is
only a dev extra), measure time-to-first-token locally, and take token counts from the server's
``usage`` when it sends one. Closing the stream or setting the cancel event closes the HTTP
response, which is how every such server learns that it may stop generating.

Several servers may serve one model (``--base-url "A;B"``): ``replica_pool`` picks the least busy
one that is up for each request. A request that fails before its first token (refused, 5xx, timeout)
is retried once on another replica; one that fails mid-answer ends with an error naming the server.

Token counts without a tokenizer are estimates (``engine.history.estimate_tokens``): about four characters per
token for Latin text and code, one per CJK character. They are used to trim long histories
before sending and when the server reports no usage; they err on the high side for Chinese.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from engine.backends.base import BackendState, EngineInfo
from engine.backends.openai_errors import event_error, http_error, server_message, transport_error
from engine.backends.replica_pool import Replica, ReplicaPool, describe
from engine.config import EngineConfig, SamplingParams
from engine.errors import ConfigError, EngineError, ModelLoadError, RemoteError
from engine.history import answer_reserve, estimate_tokens, estimated_encode, fit_prompt
from engine.remote_markup import RemoteMarkup
from engine.remote_markup import wire_messages as _wire
from engine.stats import GenerationStats
from engine.upstreams import upstreams

__all__ = ["OpenAIBackend"]

DEFAULT_CONTEXT = 8192  # when the server does not say (vLLM's max_model_len, our context_length)
CAPACITY = 8  # per server: remote servers batch requests, so let this many through our queue at once
# read: the longest silence between two pieces of a stream (a queued prompt on a busy server);
# a server that dies closes its connections, which ends the stream at once.
_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=600.0)


class _BeforeFirstToken(Exception):
    """A replica failed before anything was passed on: another replica may answer instead."""

    def __init__(self, error: EngineError) -> None:
        super().__init__(str(error))
        self.error = error


class _Answer:
    """What the stream has brought so far, across a retry."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.finish: str | None = None
        self.usage: dict | None = None
        self.markup = RemoteMarkup()


class OpenAIBackend:
    enforces_json_schema = True  # passed through: the remote server enforces it (or answers 400)

    def __init__(self, pool: ReplicaPool, model: str, context_length: int,
                 notes: tuple[str, ...] = (), sees_images: bool = False) -> None:
        self.pool = pool
        self.sees_images = sees_images  # declared per model (vision=true): the server's /models does not say
        self.base_url = pool.replicas[0].url
        self.model = model
        self.capacity = CAPACITY * len(pool.replicas)
        self.info = EngineInfo(
            model=model, backend="openai", device="remote", device_name=", ".join(r.name for r in pool.replicas),
            dtype="unknown", quantization=None, context_length=context_length, notes=notes,
        )

    @property
    def client(self) -> httpx.Client:
        return self.pool.replicas[0].client

    @classmethod
    def load(cls, config: EngineConfig, progress: Callable[[str], None] | None = None,
             transport: httpx.BaseTransport | None = None) -> OpenAIBackend:
        """Connect, list the servers' models and pick ``--remote-model`` (default: the first one listed)."""
        if not config.base_url:
            raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1.")
        pool = ReplicaPool.connect(upstreams(config.base_url, config.remote_api_key), _TIMEOUT, transport)
        try:
            model, served = cls._check_replicas(pool, config.remote_model, progress)
        except BaseException:
            pool.close()
            raise
        context = min(served or DEFAULT_CONTEXT, config.max_context or served or DEFAULT_CONTEXT)
        where = pool.replicas[0].url if len(pool.replicas) == 1 else f"{len(pool.replicas)} servers"
        notes = (f"Answers come from {model!r} at {where}; token counts are estimates unless "
                 "the server reports usage.",)
        pool.start()
        return cls(pool, model, context, notes, sees_images=config.vision)

    @classmethod
    def _check_replicas(cls, pool: ReplicaPool, wanted: str | None,
                        progress: Callable[[str], None] | None) -> tuple[str, int | None]:
        """Every replica's model list: the model served, its context; unreachable replicas start down."""
        model, contexts, unreachable = wanted, [], []
        for replica in pool.replicas:
            if progress:
                progress(f"Connecting to the model server at {replica.url}…")
            try:
                models = cls._list_models(replica.client, replica.url, wanted)
            except _Unreachable as exc:
                pool.failed(replica, describe(exc.cause), refused=True)
                unreachable.append(exc.error)
                continue
            ids = [str(m.get("id")) for m in models]
            model = model or (ids[0] if ids else None)
            if model is None:
                raise ModelLoadError(f"The model server at {replica.url} lists no models; pass --remote-model NAME.")
            if ids and model not in ids:
                raise ModelLoadError(f"The model server at {replica.url} has no model {model!r}; it offers "
                                     f"{', '.join(map(repr, ids[:10]))}. Check --remote-model (every server "
                                     "in --base-url must serve the same model).")
            entry = next((m for m in models if m.get("id") == model), {})
            contexts += [entry[k] for k in ("context_length", "max_model_len") if isinstance(entry.get(k), int)][:1]
        if len(unreachable) == len(pool.replicas):
            raise unreachable[0]
        if model is None:
            raise ModelLoadError("No model server in --base-url lists a model; pass --remote-model NAME.")
        return model, (min(contexts) if contexts else None)

    @staticmethod
    def _list_models(client: httpx.Client, base_url: str, wanted: str | None) -> list[dict]:
        try:
            response = client.get("models", timeout=15.0)
        except httpx.HTTPError as exc:
            raise _Unreachable(ModelLoadError(f"Cannot reach the model server at {base_url}: {exc}; check "
                                              "--base-url and that the server is running."), exc) from exc
        if response.status_code in (401, 403):
            raise ModelLoadError(f"The model server at {base_url} refused the API key (HTTP "
                                 f"{response.status_code}: {server_message(response)}); check --remote-api-key.")
        if response.status_code == 404 and wanted:
            return []  # the server does not list models; trust --remote-model
        if response.status_code >= 400:
            raise ModelLoadError(f"The model server at {base_url} answered HTTP {response.status_code} to "
                                 f"GET /models ({server_message(response)}); check --base-url (it usually ends in /v1).")
        try:
            data = response.json().get("data")
        except (ValueError, AttributeError):
            data = None
        if not isinstance(data, list):
            raise ModelLoadError(f"{base_url}/models did not answer with an OpenAI model list; check --base-url "
                                 "(it usually ends in /v1).")
        return [m for m in data if isinstance(m, dict)]

    def state(self) -> BackendState:
        # batching and caches are the servers' own, not visible here; the replicas are
        return BackendState(replicas=self.pool.snapshot())

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _payload(self, messages: list[dict], params: SamplingParams) -> dict:
        payload = {"model": self.model, "messages": messages, "stream": True,
                   "stream_options": {"include_usage": True}, "temperature": params.temperature,
                   "top_p": params.top_p, "max_tokens": params.max_new_tokens}
        if params.stop:
            payload["stop"] = list(params.stop)
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.tools:
            payload["tools"] = list(params.tools)
        if params.json_schema is not None:
            payload["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "answer", "schema": params.json_schema, "strict": True}}
        if params.template_kwargs:
            payload["chat_template_kwargs"] = dict(params.template_kwargs)
        return payload

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        session_id: str | None,
        cancel: threading.Event,
    ) -> Iterator[str | GenerationStats]:
        """Text deltas from a replica's SSE stream, then one GenerationStats."""
        # The server's tokenizer is not ours to call: trim by the estimate, by the engine's one rule.
        prompt = fit_prompt(messages, self.info.context_length,
                            answer_reserve(self.info.context_length, params.max_new_tokens), estimated_encode)
        messages = prompt.messages
        started = time.perf_counter()
        stats = GenerationStats(device="remote", trimmed_messages=prompt.dropped)
        payload, answer, tried = self._payload(_wire(messages), params), _Answer(), ()
        while True:
            replica = self.pool.choose(exclude=tried)
            tried += (replica,)
            try:
                with self.pool.lease(replica):
                    yield from self._stream_from(replica, payload, cancel, started, stats, answer)
                break
            except _BeforeFirstToken as failure:
                # once, on another replica that is up; nothing was passed on, so nobody sees the retry
                if len(tried) > 1 or not self.pool.any_other_up(tried) or cancel.is_set():
                    raise failure.error from failure.__cause__
        yield from answer.markup.finish(cut_off=answer.finish == "length")
        stats.total_s = time.perf_counter() - started
        self._fill_counts(stats, answer.usage, messages, answer.chunks)
        if len(self.pool.replicas) > 1:
            stats.extra["replica"] = replica.name
        if cancel.is_set():
            stats.finish_reason = "cancelled"
        elif answer.finish == "length":
            stats.finish_reason = "length"
        yield stats

    def _stream_from(self, replica: Replica, payload: dict, cancel: threading.Event, started: float,
                     stats: GenerationStats, answer: _Answer) -> Iterator[str]:
        began = time.perf_counter()
        try:
            with replica.client.stream("POST", "chat/completions", json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    error = http_error(response, replica.url, self.model)
                    if response.status_code >= 500 or response.status_code == 429:
                        self.pool.failed(replica, f"HTTP {response.status_code}",
                                         counts=response.status_code not in (429, 503))
                        raise _BeforeFirstToken(error)
                    raise error
                for event in _sse_events(response.iter_lines()):
                    if cancel.is_set():
                        break
                    if "error" in event:
                        message = event_error(event["error"])
                        self.pool.failed(replica, message[:200], counts=False)
                        error = RemoteError(f"The model server at {replica.url} failed mid-answer: {message}")
                        if not answer.chunks:
                            raise _BeforeFirstToken(error)
                        raise error
                    answer.usage = event.get("usage") or answer.usage
                    if isinstance(event.get("x_stats"), dict):  # another dcu-chat reports its own stats
                        stats.extra["remote"] = event["x_stats"]
                    for choice in event.get("choices") or []:
                        for delta in answer.markup.feed(choice.get("delta") or {}):
                            if not answer.chunks:
                                stats.ttft_s = time.perf_counter() - started
                            answer.chunks.append(delta)
                            yield delta
                        answer.finish = choice.get("finish_reason") or answer.finish
        except httpx.HTTPError as exc:
            self.pool.failed(replica, describe(exc), refused=isinstance(exc, httpx.ConnectError))
            if not answer.chunks:
                raise _BeforeFirstToken(transport_error(exc, replica.url)) from exc
            again = (" Ask again: another server of this model answers if one is up." if len(self.pool.replicas) > 1
                     else " Ask again once it is back.")
            raise RemoteError(f"The model server {replica.name} stopped in the middle of this answer ({describe(exc)}); "
                              f"the answer above is cut off.{again}") from exc
        self.pool.succeeded(replica, time.perf_counter() - began)

    def _fill_counts(self, stats: GenerationStats, usage: dict | None, messages: list[dict],
                     chunks: list[str]) -> None:
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            stats.completion_tokens = int(usage["completion_tokens"])
            details = usage.get("prompt_tokens_details") or {}
            stats.cached_tokens = int(details.get("cached_tokens") or 0)
            return
        # Most servers send about one token per chunk; the prompt is estimated.
        stats.prompt_tokens = len(estimated_encode(messages))
        stats.completion_tokens = len(chunks)
        stats.extra["approximate_usage"] = True

    def close(self) -> None:
        self.pool.close()


class _Unreachable(Exception):
    def __init__(self, error: ModelLoadError, cause: httpx.HTTPError) -> None:
        super().__init__(str(error))
        self.error, self.cause = error, cause


def _sse_events(lines: Iterator[str]) -> Iterator[dict]:
    """JSON payloads of ``data:`` lines until ``data: [DONE]``; comments and other fields are skipped."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        if not data:
            continue
        try:
            event = json.loads(data)
        except json.JSONDecodeError as exc:
            raise RemoteError(f"The model server sent a malformed stream event: {data[:200]!r}.") from exc
        if isinstance(event, dict):
            yield event
