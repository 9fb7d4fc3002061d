"""A remote OpenAI-compatible server as a backend (``--backend openai --base-url URL``).

Anything that speaks ``/v1/chat/completions`` works: vLLM's server, llama.cpp's server, Ollama,
or another dcu-chat. We stream over plain httpx (a runtime dependency; the ``openai`` package is
only a dev extra), measure time-to-first-token locally, and take token counts from the server's
``usage`` when it sends one. Closing the stream or setting the cancel event closes the HTTP
response, which is how every such server learns that it may stop generating.

Token counts without a tokenizer are estimates (``engine.history.estimate_tokens``): about four characters per
token for Latin text and code, one per CJK character. They are used to trim long histories
before sending and when the server reports no usage; they err on the high side for Chinese.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from engine.backends.base import BackendState, EngineInfo
from engine.config import EngineConfig, SamplingParams
from engine.errors import ConfigError, EngineBusy, EngineError, ModelLoadError, PromptTooLong, RemoteError
from engine.history import answer_reserve, estimate_tokens, estimated_encode, fit_prompt
from engine.remote_markup import RemoteMarkup
from engine.remote_markup import wire_messages as _wire
from engine.stats import GenerationStats

__all__ = ["OpenAIBackend"]

DEFAULT_CONTEXT = 8192  # when the server does not say (vLLM's max_model_len, our context_length)
CAPACITY = 8  # remote servers batch requests: let this many through our queue at once
_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=600.0)


def _server_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return response.text.strip()[:300] or response.reason_phrase


class OpenAIBackend:
    capacity = CAPACITY
    enforces_json_schema = True  # passed through: the remote server enforces it (or answers 400)

    def __init__(self, client: httpx.Client, base_url: str, model: str, context_length: int,
                 notes: tuple[str, ...] = (), sees_images: bool = False) -> None:
        self.client = client
        self.sees_images = sees_images  # declared per model (vision=true): the server's /models does not say
        self.base_url = base_url
        self.model = model
        self.info = EngineInfo(
            model=model, backend="openai", device="remote", device_name=httpx.URL(base_url).netloc.decode(),
            dtype="unknown", quantization=None, context_length=context_length, notes=notes,
        )

    @classmethod
    def load(cls, config: EngineConfig, progress: Callable[[str], None] | None = None,
             transport: httpx.BaseTransport | None = None) -> OpenAIBackend:
        """Connect, list the server's models and pick ``--remote-model`` (default: the first one)."""
        if not config.base_url:
            raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1.")
        base_url = config.base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {config.remote_api_key}"} if config.remote_api_key else {}
        client = httpx.Client(base_url=base_url + "/", headers=headers, timeout=_TIMEOUT, transport=transport)
        if progress:
            progress(f"Connecting to the model server at {base_url}…")
        models = cls._list_models(client, base_url, config.remote_model)
        ids = [str(m.get("id")) for m in models]
        model = config.remote_model or (ids[0] if ids else None)
        if model is None:
            raise ModelLoadError(f"The model server at {base_url} lists no models; pass --remote-model NAME.")
        if ids and model not in ids:
            raise ModelLoadError(f"The model server at {base_url} has no model {model!r}; it offers "
                                 f"{', '.join(map(repr, ids[:10]))}. Check --remote-model.")
        entry = next((m for m in models if m.get("id") == model), {})
        served = next((entry[k] for k in ("context_length", "max_model_len") if isinstance(entry.get(k), int)), None)
        context = min(served or DEFAULT_CONTEXT, config.max_context or served or DEFAULT_CONTEXT)
        notes = (f"Answers come from {model!r} at {base_url}; token counts are estimates unless "
                 "the server reports usage.",)
        return cls(client, base_url, model, context, notes, sees_images=config.vision)

    @staticmethod
    def _list_models(client: httpx.Client, base_url: str, wanted: str | None) -> list[dict]:
        try:
            response = client.get("models", timeout=15.0)
        except httpx.HTTPError as exc:
            raise ModelLoadError(f"Cannot reach the model server at {base_url}: {exc}; check --base-url "
                                 "and that the server is running.") from exc
        if response.status_code in (401, 403):
            raise ModelLoadError(f"The model server at {base_url} refused the API key (HTTP "
                                 f"{response.status_code}: {_server_message(response)}); check --remote-api-key.")
        if response.status_code == 404 and wanted:
            return []  # the server does not list models; trust --remote-model
        if response.status_code >= 400:
            raise ModelLoadError(f"The model server at {base_url} answered HTTP {response.status_code} to "
                                 f"GET /models ({_server_message(response)}); check --base-url (it usually ends in /v1).")
        try:
            data = response.json().get("data")
        except (ValueError, AttributeError):
            data = None
        if not isinstance(data, list):
            raise ModelLoadError(f"{base_url}/models did not answer with an OpenAI model list; check --base-url "
                                 "(it usually ends in /v1).")
        return [m for m in data if isinstance(m, dict)]

    def state(self) -> BackendState:
        return BackendState()  # batching and caches are the server's own, not visible here

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

    def _http_error(self, response: httpx.Response) -> EngineError:
        status, message = response.status_code, _server_message(response)
        where = f"The model server at {self.base_url}"
        if status in (429, 503):
            return EngineBusy(f"{where} is busy (HTTP {status}: {message}). Please try again in a moment.")
        if status in (400, 413, 422) and re.search(r"context|too long|too large|maximum.*tokens", message, re.I):
            return PromptTooLong(f"{where} says the conversation is too long: {message}. Start a new chat or "
                                 "lower max new tokens.")
        if status in (400, 422):
            return ConfigError(f"{where} rejected the request: {message}")
        if status in (401, 403):
            return RemoteError(f"{where} refused the API key (HTTP {status}: {message}); check --remote-api-key.")
        if status == 404:
            return RemoteError(f"{where} does not know model {self.model!r} (HTTP 404: {message}); "
                               "check --remote-model.")
        return RemoteError(f"{where} answered HTTP {status}: {message}")

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        session_id: str | None,
        cancel: threading.Event,
    ) -> Iterator[str | GenerationStats]:
        """Text deltas from the server's SSE stream, then one GenerationStats."""
        # The server's tokenizer is not ours to call: trim by the estimate, by the engine's one rule.
        prompt = fit_prompt(messages, self.info.context_length,
                            answer_reserve(self.info.context_length, params.max_new_tokens), estimated_encode)
        messages, dropped = prompt.messages, prompt.dropped
        started = time.perf_counter()
        stats = GenerationStats(device="remote", trimmed_messages=dropped)
        chunks: list[str] = []
        finish, usage = None, None
        markup = RemoteMarkup()
        try:
            with self.client.stream("POST", "chat/completions", json=self._payload(_wire(messages), params)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._http_error(response)
                for event in _sse_events(response.iter_lines()):
                    if cancel.is_set():
                        break
                    if "error" in event:
                        raise RemoteError(f"The model server at {self.base_url} failed mid-answer: "
                                          f"{_event_error(event['error'])}")
                    usage = event.get("usage") or usage
                    if isinstance(event.get("x_stats"), dict):  # another dcu-chat reports its own stats
                        stats.extra["remote"] = event["x_stats"]
                    for choice in event.get("choices") or []:
                        for delta in markup.feed(choice.get("delta") or {}):
                            if not chunks:
                                stats.ttft_s = time.perf_counter() - started
                            chunks.append(delta)
                            yield delta
                        finish = choice.get("finish_reason") or finish
        except httpx.TimeoutException as exc:
            raise RemoteError(f"The model server at {self.base_url} did not answer in time ({exc!r}); "
                              "it may be overloaded.") from exc
        except httpx.HTTPError as exc:
            raise RemoteError(f"Cannot reach the model server at {self.base_url}: {exc}; check --base-url "
                              "and that the server is running.") from exc
        yield from markup.finish(cut_off=finish == "length")
        stats.total_s = time.perf_counter() - started
        self._fill_counts(stats, usage, messages, chunks)
        if cancel.is_set():
            stats.finish_reason = "cancelled"
        elif finish == "length":
            stats.finish_reason = "length"
        yield stats

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
        self.client.close()


def _event_error(error) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


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
