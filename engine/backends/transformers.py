"""The default backend: a transformers model held in this process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from engine.backends.base import EngineInfo
from engine.config import EngineConfig, SamplingParams
from engine.device import DeviceInfo, resolve_device
from engine.generate import stream_generate
from engine.history import fit_to_context
from engine.loader import LoadedModel, load_model
from engine.stats import GenerationStats
from engine.templates import default_stop_strings, ensure_chat_template

__all__ = ["TransformersBackend"]

# Long contexts are slow on a CPU and costly on small cards; --max-context raises this.
DEFAULT_CONTEXT_CAP = 8192


class TransformersBackend:
    def __init__(self, loaded: LoadedModel, device: DeviceInfo, config: EngineConfig) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = device
        model_type = getattr(self.model.config, "model_type", "")
        fallback = ensure_chat_template(self.tokenizer, model_type)
        self.stop_strings = default_stop_strings(self.tokenizer, model_type, fallback)
        self.stop_token_ids = self._single_token_ids(self.stop_strings)
        model_max = getattr(self.model.config, "max_position_embeddings", None) or DEFAULT_CONTEXT_CAP
        context = min(model_max, config.max_context or DEFAULT_CONTEXT_CAP)
        notes = list(loaded.notes)
        if fallback:
            notes.append(f"{loaded.name} has no chat template; using the {model_type or 'plain'} fallback.")
        self.info = EngineInfo(
            model=loaded.name, backend="transformers", device=device.kind, device_name=device.name,
            dtype=loaded.dtype, quantization=loaded.quantization, context_length=context, notes=tuple(notes),
        )

    @classmethod
    def load(cls, config: EngineConfig, progress: Callable[[str], None] | None = None) -> TransformersBackend:
        device = resolve_device(config.device, config.strict_device)
        return cls(load_model(config, device, progress), device, config)

    def _single_token_ids(self, strings: tuple[str, ...]) -> tuple[int, ...]:
        """Stop strings that are one special token stop generation as an end-of-sequence would."""
        ids = []
        for text in strings:
            encoded = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(encoded) == 1:
                ids.append(encoded[0])
        return tuple(ids)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        session_id: str | None,
        cancel: threading.Event,
    ) -> Iterator[str | GenerationStats]:
        reserve = min(params.max_new_tokens, self.info.context_length // 2)
        prompt = fit_to_context(self.tokenizer, messages, self.info.context_length, reserve)
        for item in stream_generate(
            self.model, self.tokenizer, prompt.ids, params, self.device, cancel,
            stop_strings=(*self.stop_strings, *params.stop), stop_token_ids=self.stop_token_ids,
        ):
            if isinstance(item, GenerationStats):
                item.trimmed_messages = prompt.dropped
            yield item
