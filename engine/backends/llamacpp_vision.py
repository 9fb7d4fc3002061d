"""llama.cpp with a multimodal projector: the model reads images (``--mmproj FILE``, per model ``mmproj=FILE``).

A vision model's GGUF comes with a projector GGUF (``mmproj-*.gguf``) that turns pictures into the
model's embeddings. With it loaded, turns with images go through llama.cpp's own chat path
(``Server.handle_chat_completions``): its chat template and projector place each ``image_url`` part
(data: URLs, as OpenAI sends them). Text-only turns keep the completion path on our token ids.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import EngineConfig, SamplingParams
from engine.errors import ModelLoadError
from engine.remote_markup import wire_messages

__all__ = ["mmproj_source", "chat_request"]


def mmproj_source(config: EngineConfig) -> Path | None:
    """The model's multimodal projector (``--mmproj`` / ``mmproj=FILE``), checked; None for a text-only model."""
    if not config.mmproj:
        return None
    path = Path(config.mmproj).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ModelLoadError(f"The multimodal projector {path} is not a .gguf file; give the model's mmproj-*.gguf "
                             "(published beside vision models' GGUF files).")
    if not path.is_file():
        raise ModelLoadError(f"The multimodal projector {path} does not exist. Check the path given as mmproj=.")
    return path


def chat_request(messages: list[dict], params: SamplingParams, cache_prompt: bool) -> dict:
    """llama.cpp's own chat path, for turns with images: its template and projector place them."""
    request = {
        "messages": wire_messages(messages), "stream": True, "max_tokens": params.max_new_tokens,
        "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k, "min_p": 0.0,
        "repeat_penalty": params.repetition_penalty, "seed": -1 if params.seed is None else params.seed,
        "stop": list(params.stop), "cache_prompt": cache_prompt, "timings_per_token": True,
    }
    if params.tools:
        request["tools"] = list(params.tools)
    if params.json_schema is not None:
        request["json_schema"] = params.json_schema
    if params.template_kwargs:
        request["chat_template_kwargs"] = dict(params.template_kwargs)
    return request
