"""The default backend: a transformers model held in this process.

Requests go to the ``BatchRunner`` (concurrent requests share decoding steps); prompt-lookup
requests, and models without transformers' current cache API, use ``model.generate``. Both reuse
the KV cache of earlier turns from a ``PrefixCache``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from engine import constrained
from engine.backends.base import BackendState, EngineInfo
from engine.batching import BatchRunner, Job
from engine.config import DEFAULT_CONTEXT_CAP, EngineConfig, SamplingParams
from engine.device import DeviceInfo, resolve_device
from engine.generate import eos_ids, reset_peak_memory, stream_generate, stream_tokens
from engine.history import answer_reserve, fit_to_context, prompt_text
from engine.images import config_sees_images
from engine.kv_cache import PrefixCache
from engine.loader import LoadedModel, load_model
from engine.reasoning import opened_thinking, template_thinks
from engine.stats import GenerationStats
from engine.templates import prompt_format

__all__ = ["TransformersBackend"]


class TransformersBackend:
    sees_images = False  # a vision-language model: TransformersVisionBackend (engine/backends/transformers_vision.py)
    def __init__(self, loaded: LoadedModel, device: DeviceInfo, config: EngineConfig) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = device
        model_type = getattr(self.model.config, "model_type", "")
        self.prompt_format = prompt_format(getattr(self.tokenizer, "chat_template", None), model_type)
        self.stop_strings = self.prompt_format.stop_strings
        self.stop_token_ids = self._single_token_ids(self.stop_strings)
        model_max = getattr(self.model.config, "max_position_embeddings", None) or DEFAULT_CONTEXT_CAP
        context = min(model_max, config.max_context or DEFAULT_CONTEXT_CAP)
        notes = list(loaded.notes)
        if self.prompt_format.completion:
            notes.append(f"{loaded.name} has no chat template (a base model); prompts use a plain "
                         "Question/Answer completion format.")
        self.info = EngineInfo(
            model=loaded.name, backend="transformers", device=device.kind, device_name=device.name,
            dtype=loaded.dtype, quantization=loaded.quantization, context_length=context, notes=tuple(notes),
        )
        modern = BatchRunner.supports(self.model)
        self.runner = BatchRunner(self.model, config.max_batch, device.torch_device) if modern else None
        self.capacity = config.max_batch if modern else 1  # how many requests the engine lets in at once
        self.kv = PrefixCache(config.kv_cache_bytes) if modern and config.kv_cache_bytes > 0 else None
        self._grammar_compiler: constrained.GrammarCompiler | None = None

    @classmethod
    def load(cls, config: EngineConfig, progress: Callable[[str], None] | None = None):
        """This backend, or ``TransformersVisionBackend`` for a model directory that can see."""
        device = resolve_device(config.device, config.strict_device)
        if config_sees_images(config):
            from engine.backends.transformers_vision import TransformersVisionBackend

            return TransformersVisionBackend.load(config, device, progress)
        return cls(load_model(config, device, progress), device, config)

    def _single_token_ids(self, strings: tuple[str, ...]) -> tuple[int, ...]:
        """Stop strings that are one special token stop generation as an end-of-sequence would."""
        ids = []
        for text in strings:
            encoded = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(encoded) == 1:
                ids.append(encoded[0])
        return tuple(ids)

    @property
    def enforces_json_schema(self) -> bool:
        """Structured output needs the batch runner (it samples per request) and xgrammar."""
        return self.runner is not None and constrained.available()

    def _grammars(self) -> constrained.GrammarCompiler:
        if self._grammar_compiler is None:
            vocab = getattr(self.model.config, "vocab_size", None) or len(self.tokenizer)
            stops = eos_ids(self.model, self.stop_token_ids)
            self._grammar_compiler = constrained.GrammarCompiler(self.tokenizer, vocab, stops)
        return self._grammar_compiler

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        """Let the weights go (the model registry unloads idle models): the runner's thread ends and
        nothing here holds a tensor any more; the caller collects and empties the card's cache."""
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        if self.kv is not None:
            self.kv.clear()
        self.model = None
        self._grammar_compiler = None

    def state(self) -> BackendState:
        return BackendState(peak_batch=self.runner.peak_batch if self.runner is not None else 0,
                            kv_cache=self.kv.stats() if self.kv is not None else None)

    def _keeper(self, session_id: str | None) -> Callable[[list[int], object], None] | None:
        if self.kv is None:
            return None
        return lambda ids, cache: self.kv.store(ids, cache, session_id)

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
        opened = opened_thinking(prompt_text(self.prompt_format, prompt.messages, tools=params.tools,
                                             template_kwargs=params.template_kwargs)) \
            if template_thinks(self.prompt_format.chat_template) else None
        started = time.perf_counter()
        stops = (*self.stop_strings, *params.stop)
        cache, cached = self.kv.lookup(prompt.ids, session_id) if self.kv is not None else (None, 0)
        fmt, constraint = self.prompt_format, None
        if params.json_schema is not None:  # enforces_json_schema said the runner and xgrammar are there
            constraint = self._grammars().constraint(params.json_schema)
            fmt = replace(fmt, completion=False)  # the grammar ends the answer, not the base-model rules
        if self.runner is not None and (constraint is not None or not params.prompt_lookup_num_tokens):
            reset_peak_memory(self.device)
            eos = eos_ids(self.model, self.stop_token_ids)
            job = Job(prompt.ids, params, frozenset(eos), cancel, cache, cached, self._keeper(session_id),
                      constraint=constraint)
            stream = stream_tokens(self.runner.submit(job), self.tokenizer, len(prompt.ids), params, self.device,
                                   cancel, stops, eos, cached, started, fmt=fmt)
        else:
            stream = stream_generate(
                self.model, self.tokenizer, prompt.ids, params, self.device, cancel, stop_strings=stops,
                stop_token_ids=self.stop_token_ids, past_key_values=cache, cached_tokens=cached,
                on_finish=self._keeper(session_id), fmt=self.prompt_format,
            )
        if opened:  # the template opened a think block: say so, as if the model had written it
            yield opened
        for item in stream:
            if isinstance(item, GenerationStats):
                item.trimmed_messages = prompt.dropped
            yield item
