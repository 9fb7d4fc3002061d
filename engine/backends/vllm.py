"""vLLM in this process (``--backend vllm``, the optional ``[vllm]`` extra; CUDA or ROCm/DCU cards).

vLLM's ``AsyncLLMEngine`` batches every request continuously, so our queue lets many through at
once (``capacity``). It runs on a private event loop in a daemon thread; ``stream_chat`` is a
plain generator that reads its outputs from a queue. Cancelling (the event, or closing the
generator) cancels the request's task, and vLLM aborts a request whose ``generate`` is cancelled;
we also call ``abort`` so older versions stop too. Prompts are built exactly as in the
transformers backend (the model's chat template or our fallback, history trimmed to fit), so
answers look the same on both.

vllm is imported inside ``load`` only: the package is large and absent on CPU machines.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

from engine.answer_text import AnswerText
from engine.backends.base import BackendState, EngineInfo
from engine.config import EngineConfig, SamplingParams
from engine.errors import ConfigError, EngineError, GenerationError, ModelLoadError, OutOfMemory
from engine.history import answer_reserve, fit_to_context
from engine.stats import GenerationStats
from engine.templates import PromptFormat, prompt_format

__all__ = ["VLLMBackend", "vllm_quantization", "engine_args", "structured_output_kwargs"]

CAPACITY = 64  # requests vLLM may batch together; more wait in our fair queue
_POLL_S = 0.1  # how often a waiting consumer looks at the cancel event
_DONE = object()


def vllm_quantization(quantization: str | None) -> str | None:
    """Our --quantization values in vLLM's terms (pre-quantized AWQ/GPTQ models need none)."""
    mapping = {None: None, "none": None, "4bit": "bitsandbytes", "8bit": "fp8"}
    if quantization not in mapping:
        raise ConfigError(f"--quantization {quantization} is the transformers CPU path; with --backend vllm use "
                          "4bit (bitsandbytes), 8bit (fp8) or a pre-quantized AWQ/GPTQ model.")
    return mapping[quantization]


def engine_args(config: EngineConfig, source: str) -> dict:
    """Keyword arguments of ``vllm.AsyncEngineArgs`` for this configuration."""
    if config.tensor_parallel_size < 1:
        raise ConfigError(f"--tensor-parallel-size must be at least 1 (got {config.tensor_parallel_size}).")
    kwargs = {"model": source, "tokenizer": source, "tensor_parallel_size": config.tensor_parallel_size,
              "dtype": config.dtype, "trust_remote_code": config.trust_remote_code,
              "quantization": vllm_quantization(config.quantization)}
    if config.max_context:
        kwargs["max_model_len"] = config.max_context
    return kwargs


def structured_output_kwargs(schema: dict | None, sampling_module) -> dict:
    """``vllm.SamplingParams`` keywords that constrain decoding to ``schema``: ``structured_outputs``
    (vLLM 0.10.2 and later; the older field was removed in 0.12) or ``guided_decoding`` before it."""
    if schema is None:
        return {}
    current = getattr(sampling_module, "StructuredOutputsParams", None)
    if current is not None:
        return {"structured_outputs": current(json=schema)}
    older = getattr(sampling_module, "GuidedDecodingParams", None)
    if older is not None:
        return {"guided_decoding": older(json=schema)}
    raise ConfigError("This vLLM cannot constrain decoding to a JSON schema; upgrade it (pip install -U vllm).")


class VLLMBackend:
    capacity = CAPACITY
    sees_images = False  # prompts are rendered text here (engine/images.py)

    def __init__(self, llm, loop: asyncio.AbstractEventLoop, tokenizer, info: EngineInfo,
                 fmt: PromptFormat, vllm_module) -> None:
        self.llm = llm
        self.loop = loop
        self.tokenizer = tokenizer
        self.info = info
        self.prompt_format = fmt
        self.stop_strings = fmt.stop_strings
        self._vllm = vllm_module
        self._sampling_module = getattr(vllm_module, "sampling_params", None)

    @property
    def enforces_json_schema(self) -> bool:
        """vLLM decodes under a JSON schema itself (xgrammar or guidance inside it)."""
        return any(hasattr(self._sampling_module, name) for name in ("StructuredOutputsParams", "GuidedDecodingParams"))

    @classmethod
    def load(cls, config: EngineConfig, progress: Callable[[str], None] | None = None) -> VLLMBackend:
        try:
            import vllm
        except ImportError as exc:
            raise ModelLoadError(
                f"--backend vllm needs the vllm package, which is not installed ({exc}). Install it with "
                "pip install '.[vllm]' on a Linux machine with a CUDA or ROCm/DCU build of torch, "
                "or use --backend transformers."
            ) from exc
        from transformers import AutoTokenizer

        from engine.device import resolve_device
        from engine.loader import resolve_model_source

        progress = progress or (lambda message: None)
        source, name = resolve_model_source(config, progress)
        kwargs = engine_args(config, source)
        device = resolve_device(config.device, config.strict_device)
        progress(f"Starting vLLM for {name} on {config.tensor_parallel_size} card(s)…")
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="dcu-chat-vllm", daemon=True).start()

        async def create():  # inside the loop, so vLLM's output handler runs on it
            llm = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**kwargs))
            # An attribute in vLLM's v1 engine, a coroutine in older releases.
            return llm, getattr(llm, "model_config", None) or await llm.get_model_config()

        try:
            llm, model_config = asyncio.run_coroutine_threadsafe(create(), loop).result()
        except Exception as exc:  # vLLM raises many types while loading; all become one clear error
            loop.call_soon_threadsafe(loop.stop)
            if "out of memory" in str(exc).lower() or "cache blocks" in str(exc).lower():
                raise OutOfMemory(f"vLLM ran out of memory loading {name}: {exc}. Try --max-context 4096, "
                                  "--quantization 4bit or more cards (--tensor-parallel-size).") from exc
            raise ModelLoadError(f"vLLM could not load {source!r}: {exc}") from exc
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code)
        model_type = getattr(model_config.hf_config, "model_type", "")
        fmt = prompt_format(getattr(tokenizer, "chat_template", None), model_type)
        notes = [f"{name} has no chat template; prompts use a plain completion format."] if fmt.completion else []
        info = EngineInfo(
            model=name, backend="vllm", device=device.kind, device_name=device.name,
            dtype=str(model_config.dtype).removeprefix("torch."), quantization=kwargs["quantization"],
            context_length=int(model_config.max_model_len), notes=tuple(notes),
        )
        return cls(llm, loop, tokenizer, info, fmt, vllm)

    def state(self) -> BackendState:
        return BackendState()  # batching and caches are the server's own, not visible here

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _sampling(self, params: SamplingParams):
        return self._vllm.SamplingParams(
            temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or -1,
            max_tokens=params.max_new_tokens, repetition_penalty=params.repetition_penalty, seed=params.seed,
            stop=[*self.stop_strings, *params.stop],
            **structured_output_kwargs(params.json_schema, self._sampling_module),
        )

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        session_id: str | None,
        cancel: threading.Event,
    ) -> Iterator[str | GenerationStats]:
        reserve = answer_reserve(self.info.context_length, params.max_new_tokens)
        prompt = fit_to_context(self.tokenizer, messages, self.info.context_length, reserve, self.prompt_format,
                                params.tools, params.template_kwargs)
        request_id = f"dcu-chat-{uuid.uuid4().hex}"
        outputs: queue.Queue = queue.Queue()

        async def consume() -> None:
            try:
                async for output in self.llm.generate({"prompt_token_ids": prompt.ids}, self._sampling(params),
                                                      request_id):
                    outputs.put(output)
            except Exception as exc:  # handed to the consumer thread below
                outputs.put(exc)
            finally:
                outputs.put(_DONE)

        started = time.perf_counter()
        task = asyncio.run_coroutine_threadsafe(consume(), self.loop)
        stats = GenerationStats(prompt_tokens=len(prompt.ids), device=self.info.device,
                                trimmed_messages=prompt.dropped)
        fmt = self.prompt_format
        if params.json_schema is not None:  # grammar-bound JSON ends where the grammar does (as on llama.cpp)
            fmt = replace(fmt, completion=False)
        answer, finish, text = AnswerText(fmt), None, ""  # vLLM applies the stop strings itself
        try:
            while not cancel.is_set():
                try:
                    item = outputs.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    raise item
                completion = item.outputs[0]
                text = completion.text
                shown = answer.update(text)
                if shown:
                    stats.ttft_s = stats.ttft_s or time.perf_counter() - started
                    yield shown
                stats.completion_tokens = len(completion.token_ids)
                stats.cached_tokens = int(getattr(item, "num_cached_tokens", 0) or 0)
                finish = completion.finish_reason or finish
                if answer.ended:
                    finish = "stop"
                    break
            if finish is not None:  # the rest, judged as finished
                rest = answer.finish(text)
                if rest:
                    stats.ttft_s = stats.ttft_s or time.perf_counter() - started
                    yield rest
        except EngineError:
            raise
        except Exception as exc:
            raise GenerationError(f"vLLM failed while generating: {exc}") from exc
        finally:
            if not task.done():
                task.cancel()  # cancelling generate() makes vLLM abort the request
                asyncio.run_coroutine_threadsafe(self.llm.abort(request_id), self.loop)
        stats.total_s = time.perf_counter() - started
        if cancel.is_set():
            stats.finish_reason = "cancelled"
        elif finish == "length":
            stats.finish_reason = "length"
        yield stats
