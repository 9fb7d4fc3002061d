"""A transformers vision-language model held in this process (LLaVA, Qwen2-VL, Idefics3/SmolVLM, …).

``TransformersBackend.load`` hands a model directory that can see (``engine.images.config_sees_images``:
its config has a ``vision_config``) to this class. Prompts go through the model's processor: its chat
template with OpenAI-style content parts (``{"type": "image"}`` where a user turn had an image), then
the processor itself, which expands each image placeholder into the model's image tokens and turns
the pictures into ``pixel_values``. Generation is ``model.generate`` in a worker thread (one request
at a time; no batch runner or KV reuse: the image tokens would have to match too).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator

from engine.backends.base import BackendState, EngineInfo
from engine.config import DEFAULT_CONTEXT_CAP, EngineConfig, SamplingParams
from engine.device import DeviceInfo
from engine.errors import ConfigError
from engine.generate import stream_generate
from engine.history import answer_reserve, fit_prompt
from engine.images import decode_data_url
from engine.loader import LoadedModel
from engine.stats import GenerationStats
from engine.templates import prompt_format

__all__ = ["TransformersVisionBackend"]


def _parts(messages: list[dict]) -> list[dict]:
    """Engine messages in the processor's form: content parts, an image part per image."""
    out = []
    for message in messages:
        parts = [{"type": "image"} for _ in message.get("images") or ()]
        if message["content"] or not parts:
            parts.append({"type": "text", "text": message["content"]})
        out.append({**{k: v for k, v in message.items() if k != "images"}, "content": parts})
    return out


def _pictures(messages: list[dict]) -> list:
    """The PIL images of ``messages``, in the order the template places them."""
    from PIL import Image, UnidentifiedImageError

    pictures = []
    for message in messages:
        for number, url in enumerate(message.get("images") or (), 1):
            _, data = decode_data_url(url)
            try:
                pictures.append(Image.open(io.BytesIO(data)).convert("RGB"))
            except (UnidentifiedImageError, OSError) as exc:
                raise ConfigError(f"Image {number} could not be read as a picture ({exc}); send a PNG or JPEG.") from exc
    return pictures


class TransformersVisionBackend:
    sees_images = True
    capacity = 1  # model.generate serves one request at a time
    enforces_json_schema = False

    def __init__(self, loaded: LoadedModel, device: DeviceInfo, config: EngineConfig) -> None:
        self.model = loaded.model
        self.processor = loaded.processor
        self.tokenizer = loaded.tokenizer
        self.device = device
        model_config = self.model.config
        template = getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)
        if not template:
            raise ConfigError(f"{loaded.name} has no chat template in its processor; a vision-language model needs "
                              "one to place the images.")
        self.prompt_format = prompt_format(template, getattr(model_config, "model_type", ""))
        self.stop_strings = self.prompt_format.stop_strings
        text_config = getattr(model_config, "text_config", None) or model_config
        model_max = getattr(text_config, "max_position_embeddings", None) or DEFAULT_CONTEXT_CAP
        self.info = EngineInfo(
            model=loaded.name, backend="transformers", device=device.kind, device_name=device.name,
            dtype=loaded.dtype, quantization=loaded.quantization,
            context_length=min(model_max, config.max_context or DEFAULT_CONTEXT_CAP),
            notes=(*loaded.notes, f"{loaded.name} reads images (a vision-language model, one request at a time)."),
        )

    @classmethod
    def load(cls, config: EngineConfig, device: DeviceInfo,
             progress: Callable[[str], None] | None = None) -> TransformersVisionBackend:
        from engine.loader import load_vision_model

        return cls(load_vision_model(config, device, progress), device, config)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def state(self) -> BackendState:
        return BackendState()

    def close(self) -> None:
        self.model = None

    def _text(self, messages: list[dict], params: SamplingParams) -> str:
        return self.processor.apply_chat_template(_parts(messages), add_generation_prompt=True, tokenize=False,
                                                  **({"tools": list(params.tools)} if params.tools else {}),
                                                  **params.template_kwargs)

    def _inputs(self, messages: list[dict], params: SamplingParams) -> dict:
        """The processor's output for ``messages``: ids with each image's tokens, and the pixel values."""
        pictures = _pictures(messages)
        inputs = self.processor(text=[self._text(messages, params)], images=pictures or None, return_tensors="pt")
        inputs["images"] = len(pictures)
        return inputs

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        session_id: str | None,
        cancel: threading.Event,
    ) -> Iterator[str | GenerationStats]:
        import torch

        reserve = answer_reserve(self.info.context_length, params.max_new_tokens)
        last: dict = {}

        def encode(candidate: list[dict]) -> list[int]:
            # Exact: the processor counts each image's tokens. fit_prompt returns right after the call that
            # fits, so ``last`` then holds the inputs of the messages it keeps.
            last.clear()
            last.update(self._inputs(candidate, params))
            return last["input_ids"][0].tolist()

        prompt = fit_prompt(messages, self.info.context_length, reserve, encode)
        inputs = dict(last)
        pictures = inputs.pop("images")
        ids = inputs.pop("input_ids")[0].tolist()
        inputs.pop("attention_mask", None)
        dtype = getattr(self.model, "dtype", None)
        extra = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):  # pixel values in the model's dtype, on its device
                value = value.to(self.device.torch_device)
                extra[key] = value.to(dtype) if dtype is not None and torch.is_floating_point(value) else value
        started = time.perf_counter()
        stream = stream_generate(self.model, self.tokenizer, ids, params, self.device, cancel,
                                 stop_strings=(*self.stop_strings, *params.stop), fmt=self.prompt_format,
                                 extra_inputs=extra)
        for item in stream:
            if isinstance(item, GenerationStats):
                item.trimmed_messages = prompt.dropped
                item.extra["images"] = pictures
                item.total_s = item.total_s or time.perf_counter() - started
            yield item
