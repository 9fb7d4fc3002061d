"""Images in a conversation, for models that can see: the one form they take, and who can read them.

Inside the engine an image is a ``data:image/…;base64,…`` URL in the ``"images"`` list of a user
turn (``{"role": "user", "content": "What is this?", "images": ["data:image/png;base64,…"]}``):
text, so a conversation with images stays plain JSON (sessions store it as it is), and the
content stays a string for every rule that reads text. Each backend converts at its edge: the
remote one to OpenAI ``image_url`` parts, llama.cpp with a projector likewise, transformers
vision-language models to PIL images for their processor.

Whether a model can see is decided here (``config_sees_images``) from its configuration, so the
server can answer before any model is loaded: a remote model declared ``vision=true``, a GGUF
with a multimodal projector (``mmproj=FILE``), or a transformers directory whose config has a
``vision_config``. (The in-process vLLM backend renders text prompts and is not wired for images.) A loaded backend says the same through its ``sees_images``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import ConfigError

__all__ = ["ImagesNotSupported", "MAX_IMAGE_BYTES", "MAX_IMAGES", "IMAGE_TYPES", "decode_data_url", "data_url",
           "config_sees_images", "has_images", "check_images", "openai_content", "read_image", "thumbnail"]

# One decoded image. 5 MB of base64 is 6.7 MB of JSON: under the web edge's 8 MiB body limit.
MAX_IMAGE_BYTES = 5 * 1024**2
MAX_IMAGES = 8  # per request: each costs hundreds of prompt tokens
IMAGE_TYPES = ("png", "jpeg", "jpg", "gif", "webp", "bmp")
_DATA_URL = re.compile(r"^data:image/([a-z0-9.+-]+);base64,", re.I)


class ImagesNotSupported(ConfigError):
    """A message carries images and the model reads text only."""


def decode_data_url(url: str, where: str = "The image") -> tuple[str, bytes]:
    """(mime type, bytes) of a ``data:image/…;base64,`` URL; ConfigError saying what is wrong."""
    match = _DATA_URL.match(url) if isinstance(url, str) else None
    if match is None:
        raise ConfigError(f"{where} must be a data: URL of an image (data:image/png;base64,…).")
    kind = match.group(1).lower()
    if kind not in IMAGE_TYPES:
        raise ConfigError(f"{where} is image/{kind}; send PNG, JPEG, GIF, WebP or BMP.")
    payload = url[match.end():]
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES + 3:
        raise ConfigError(f"{where} is larger than {MAX_IMAGE_BYTES // 1024**2} MB; send a smaller image.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where} is not valid base64 ({exc}).") from exc
    if not data:
        raise ConfigError(f"{where} is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigError(f"{where} is larger than {MAX_IMAGE_BYTES // 1024**2} MB; send a smaller image.")
    return f"image/{kind}", data


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _hf_config_has_vision(model: str) -> bool:
    config = Path(model).expanduser() / "config.json"
    try:
        return "vision_config" in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def config_sees_images(config: EngineConfig) -> bool:
    """Whether the model ``config`` describes reads images: the one rule, known before loading."""
    if config.backend == "openai":
        return config.vision
    if config.backend == "vllm":
        return False  # the in-process vLLM path renders text prompts only
    if config.model is None or config.model.lower().endswith(".gguf"):
        # llama.cpp with the model's multimodal projector; transformers reads a GGUF as text only
        return bool(config.mmproj) and config.backend in ("auto", "llamacpp")
    return _hf_config_has_vision(config.model)  # transformers: a vision-language model directory


def has_images(messages: list[dict]) -> bool:
    return any(m.get("images") for m in messages)


def check_images(images, index: int) -> list[str]:
    """Message ``index``'s images, checked (data URLs within the limits); a new list."""
    if not isinstance(images, list):
        raise ConfigError(f"Message {index + 1}: images must be a list of data: URLs.")
    if len(images) > MAX_IMAGES:
        raise ConfigError(f"Message {index + 1} has {len(images)} images; send at most {MAX_IMAGES}.")
    for number, url in enumerate(images, 1):
        decode_data_url(url, f"Image {number} of message {index + 1}")
    return list(images)


def openai_content(message: dict) -> str | list[dict]:
    """A message's content as OpenAI sends it: the text, or text and ``image_url`` parts."""
    images = message.get("images")
    if not images:
        return message["content"]
    parts: list[dict] = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    if message["content"]:
        parts.append({"type": "text", "text": message["content"]})
    return parts


_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp"}


def read_image(data: bytes, name: str = "The image") -> str:
    """A picked file as a data: URL, once it is known to be a picture of a kind models read (PIL looks)."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigError(f"{name} is larger than {MAX_IMAGE_BYTES // 1024**2} MB; send a smaller image.")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            kind = picture.format or ""
            picture.verify()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ConfigError(f"{name} is not a picture that can be read ({exc}); send a PNG or JPEG.") from exc
    if kind not in _FORMATS:
        raise ConfigError(f"{name} is a {kind or 'unknown'} image; send PNG, JPEG, GIF, WebP or BMP.")
    return data_url(data, _FORMATS[kind])


def thumbnail(url: str, size: int = 160) -> str:
    """A small JPEG data: URL of an image (what a page shows beside a message), or "" when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        _, data = decode_data_url(url)
        with Image.open(io.BytesIO(data)) as picture:
            small = picture.convert("RGB")
            small.thumbnail((size, size))
    except (ConfigError, UnidentifiedImageError, OSError, ValueError):
        return ""
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return data_url(buffer.getvalue(), "image/jpeg")
