"""OpenAI's wire format for ``/v1``: request models, error JSON, and response builders.

Requests are validated by pydantic; unknown fields are accepted and ignored, as most
OpenAI-compatible servers do, so clients that send newer parameters keep working. Features we
cannot honour (``n`` > 1, log-probabilities, images for a model that reads text only or by web
address, a JSON schema the backend cannot enforce)
are refused with a 400 that says so rather than silently answered differently. Tools, tool
choice, response formats and template variables are read by ``webui.openai_tools``.
"""

from __future__ import annotations

import base64
import time
import uuid

import numpy as np
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.config import SamplingParams
from engine.errors import ConfigError
from engine.images import MAX_IMAGES, decode_data_url
from engine.json_schema import check_schema
from engine.stats import GenerationStats
from webui.openai_tools import ToolPlan, response_schema, template_kwargs, tool_plan

__all__ = [
    "ChatCompletionRequest", "EmbeddingRequest", "InvalidRequest", "invalid", "error_response", "engine_messages",
    "check_vision",
    "sampling_params", "completion_body", "chunk_body", "usage_body", "embedding_body", "new_id", "DEFAULT_MAX_TOKENS",
]

DEFAULT_MAX_TOKENS = 512  # when a request sets none; CPU decoding is a few tokens per second
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_INT32 = 2**31 - 1  # counts beyond this are nonsense, and backends hold them in 32-bit integers
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          413: "invalid_request_error", 429: "rate_limit_error"}


class InvalidRequest(Exception):
    """A request we refuse; becomes an OpenAI error JSON with ``status``."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    """``{"error": {"message", "type", "param", "code"}}`` as OpenAI sends it."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=_INT32)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=_INT32)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)  # what torch and llama.cpp can seed with
    n: int | None = None
    logprobs: bool | None = None
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict | None = None
    # Extensions (vLLM accepts the same names): not part of OpenAI's API.
    chat_template_kwargs: dict | None = None
    top_k: int | None = Field(default=None, ge=0, le=_INT32)
    repetition_penalty: float | None = Field(default=None, ge=0.5, le=2.0)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str]
    encoding_format: str = "float"
    dimensions: int | None = Field(default=None, ge=1, le=_INT32)


_IMAGE_PARTS = ("image_url", "input_image", "image")


def _image_of(part: dict, index: int) -> str:
    """An image part's data: URL, checked (``engine.images``); remote addresses are refused: we fetch nothing."""
    param = f"messages[{index}].content"
    url = part.get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    if not isinstance(url, str):
        raise InvalidRequest(f"messages[{index}]: an image part needs image_url.url (a data: URL).", param=param)
    if url.lower().startswith(("http://", "https://")):
        raise InvalidRequest(f"messages[{index}]: the image is a web address, and the server fetches nothing; "
                             "send the image as a data: URL (data:image/png;base64,…).", param=param,
                             code="image_url_not_supported")
    try:
        decode_data_url(url, f"messages[{index}]: the image")
    except ConfigError as exc:
        raise InvalidRequest(str(exc), param=param) from exc
    return url


def _content_of(content, index: int) -> tuple[str, list[str]]:
    """(text, images as data: URLs) of an OpenAI message content."""
    if content is None or isinstance(content, str):
        return content or "", []
    parts, images = [], []
    for part in content:
        if part.get("type") in _IMAGE_PARTS:
            images.append(_image_of(part, index))
            continue
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest(f"messages[{index}]: only text and image_url content is supported (got a "
                                 f"{part.get('type')!r} part).", param=f"messages[{index}].content")
        parts.append(part["text"])
    if len(images) > MAX_IMAGES:
        raise InvalidRequest(f"messages[{index}] has {len(images)} images; send at most {MAX_IMAGES}.",
                             param=f"messages[{index}].content")
    return "\n".join(parts), images


def check_vision(messages: list[dict], model: str, vision_models: list[str]) -> None:
    """A 400 when ``messages`` carry images and ``model`` cannot see, naming the served models that can."""
    if not any(m.get("images") for m in messages) or model in vision_models:
        return
    can = (f"The served models that can: {', '.join(map(repr, vision_models))}." if vision_models
           else "None of the models served here can.")
    raise InvalidRequest(f"The model {model!r} reads text only and cannot look at images. {can}",
                         param="messages", code="images_not_supported")


def invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def engine_messages(body: ChatCompletionRequest) -> list[dict]:
    """OpenAI messages -> engine messages; system/developer messages merged into one, first."""
    unsupported = [(body.n not in (None, 1), "n", "only n=1 is supported"),
                   (bool(body.logprobs), "logprobs", "log-probabilities are not supported")]
    for bad, param, reason in unsupported:
        if bad:
            raise InvalidRequest(f"{param}: {reason} by this server.", param=param)
    system, turns = [], []
    for i, message in enumerate(body.messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise InvalidRequest(f"messages[{i}]: role {message.role!r} is not supported; use system, "
                                 "developer, user, assistant or tool.", param=f"messages[{i}].role")
        text, images = _content_of(message.content, i)
        turn = {"role": role, "content": text}
        if images:
            if role != "user":
                raise InvalidRequest(f"messages[{i}]: only user messages may carry images.",
                                     param=f"messages[{i}].content")
            turn["images"] = images
        extra = message.model_extra or {}
        if role == "assistant" and extra.get("tool_calls"):
            if not isinstance(extra["tool_calls"], list):
                raise InvalidRequest(f"messages[{i}].tool_calls must be a list.", param=f"messages[{i}].tool_calls")
            turn["tool_calls"] = extra["tool_calls"]
        if role == "tool":
            if not turns or not (turns[-1].get("tool_calls") or turns[-1]["role"] == "tool"):
                raise InvalidRequest(f"messages[{i}]: a tool message must follow an assistant message with "
                                     "tool_calls.", param=f"messages[{i}].role")
            turn["tool_call_id"] = str(extra.get("tool_call_id") or "")
        (system if role == "system" else turns).append(turn)
    if not turns or turns[-1]["role"] not in ("user", "tool"):
        raise InvalidRequest("messages: the last message must come from the user (or be a tool result).",
                             param="messages")
    merged = [{"role": "system", "content": "\n\n".join(m["content"] for m in system)}] if system else []
    return merged + turns


def sampling_params(body: ChatCompletionRequest, plan: ToolPlan | None = None) -> SamplingParams:
    """OpenAI's defaults where the request is silent (temperature 1, top_p 1, no top-k, no penalty)."""
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > 16:
        raise InvalidRequest("stop: at most 16 stop sequences are supported.", param="stop")
    plan = plan or tool_plan(body.tools, body.tool_choice, invalid)
    schema = response_schema(body.response_format, invalid)
    if schema is not None and plan.json_schema is not None:
        raise InvalidRequest("response_format cannot be combined with a required or named tool_choice: the "
                             "answer is the tool call.", param="response_format")
    for forced, param in ((schema, "response_format"), (plan.json_schema, "tools")):
        if forced is not None:
            try:
                check_schema(forced, param)
            except ConfigError as exc:
                raise InvalidRequest(str(exc), param=param, code="unsupported_schema") from exc
    return SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=body.top_k or 0,
        max_new_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS,
        repetition_penalty=body.repetition_penalty or 1.0,
        seed=body.seed,
        stop=tuple(stop),
        json_schema=plan.json_schema if schema is None else schema,
        tools=plan.tools,
        template_kwargs=template_kwargs(body.chat_template_kwargs, invalid),
    )


def _finish_reason(stats: GenerationStats) -> str:
    if stats.finish_reason in ("length", "tool_calls"):
        return stats.finish_reason
    return "stop"  # "cancelled" has no OpenAI name


def usage_body(stats: GenerationStats) -> dict:
    usage = {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
             "total_tokens": stats.prompt_tokens + stats.completion_tokens,
             "prompt_tokens_details": {"cached_tokens": stats.cached_tokens}}
    if "reasoning_tokens" in stats.extra:
        usage["completion_tokens_details"] = {"reasoning_tokens": stats.extra["reasoning_tokens"]}
    return usage


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion_body(model: str, text: str, stats: GenerationStats, reasoning: str = "",
                    tool_calls: list[dict] | None = None) -> dict:
    """A non-streamed ``chat.completion`` with usage, plus our own stats in ``x_stats``."""
    message: dict = {"role": "assistant", "content": text if text or not tool_calls else None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": new_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _finish_reason(stats)}],
            "usage": usage_body(stats), "x_stats": stats.to_dict()}


def chunk_body(chunk_id: str, created: int, model: str, delta: dict | None = None,
               stats: GenerationStats | None = None, usage_only: bool = False) -> dict:
    """One ``chat.completion.chunk``: a delta, the final one (``stats`` given), or the usage-only one."""
    body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
    if usage_only:
        return {**body, "choices": [], "usage": usage_body(stats)}
    choice = {"index": 0, "delta": delta or {}, "logprobs": None,
              "finish_reason": _finish_reason(stats) if stats is not None else None}
    body["choices"] = [choice]
    if stats is not None:
        body["x_stats"] = stats.to_dict()
    return body


def embedding_body(model: str, vectors: np.ndarray, encoding_format: str, tokens: int) -> dict:
    def encode(vector: np.ndarray):
        if encoding_format == "base64":  # the openai client asks for this by default
            return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
        return [float(x) for x in vector]

    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
