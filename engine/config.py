"""Configuration dataclasses of the model side, validated when built.

``app.py`` is the only place that builds them from flags, environment and config file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.embedded import EMBEDDED_MODEL
from engine.errors import ConfigError
from engine.upstreams import normalize as normalize_upstreams
from engine.upstreams import upstreams

__all__ = ["EngineConfig", "ModelsConfig", "SamplingParams", "default_cache_dir", "DEFAULT_CONTEXT_CAP"]

DEVICES = ("auto", "cpu", "cuda", "dcu", "rocm")
DTYPES = ("auto", "float32", "float16", "bfloat16")
QUANTIZATIONS = (None, "none", "auto", "4bit", "8bit", "int8")
# Long contexts are slow on a CPU and costly on small cards; --max-context raises this.
DEFAULT_CONTEXT_CAP = 8192
BACKENDS = ("auto", "llamacpp", "transformers", "vllm", "openai")


def default_cache_dir() -> Path:
    """Where converted models live; shared by runs, tests and CI on one machine."""
    env = os.environ.get("DCU_CHAT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dcu-chat"


@dataclass(frozen=True)
class SamplingParams:
    """How one answer is sampled. ``temperature == 0`` means greedy decoding."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 512
    repetition_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    prompt_lookup_num_tokens: int | None = None
    # Structured output: the answer must be JSON valid for this schema (constrained decoding;
    # engine/json_schema.py says which schemas can be enforced).
    json_schema: dict | None = None
    # What the chat template gets besides the messages: OpenAI tool definitions, and template
    # variables such as ``enable_thinking`` (``chat_template_kwargs`` on /v1).
    tools: tuple[dict, ...] = ()
    template_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be between 0 and 2 (got {self.temperature}).")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1] (got {self.top_p}).")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be 0 (off) or positive (got {self.top_k}).")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1 (got {self.max_new_tokens}).")
        if not 0.5 <= self.repetition_penalty <= 2.0:
            raise ConfigError(f"repetition_penalty must be between 0.5 and 2 (got {self.repetition_penalty}).")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        object.__setattr__(self, "stop", tuple(s for s in stop if s))
        object.__setattr__(self, "tools", tuple(self.tools or ()))
        if not all(isinstance(k, str) for k in self.template_kwargs or {}):
            raise ConfigError("chat template variables must have text names.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class EngineConfig:
    """Which model, where, and how it is loaded. ``model=None`` is the embedded default."""

    model: str | None = field(default=None, metadata={
        "help": f"model directory, .gguf file or cached hub id (default: the embedded {EMBEDDED_MODEL.display_name})"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N, dcu or rocm"})
    dtype: str = field(default="auto", metadata={
        "help": "auto, float32, float16 or bfloat16 (auto: bf16/fp16 on accelerators, fp32 on CPU)"})
    # "auto": int8 on the CPU when the quality gate passes (engine/quantize.py), none on GPUs.
    quantization: str | None = field(default="auto", metadata={
        "help": "auto (int8 on CPU when it passes a quality check), none, 4bit or 8bit (bitsandbytes,"
            " GPU/DCU; with vllm: bitsandbytes or fp8) or int8 (CPU)"})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "allow model code from the model directory (ChatGLM3, Baichuan2, Qwen-1)"})
    strict_device: bool = field(default=False, metadata={
        "help": "fail instead of falling back to the CPU when --device is missing"})
    # "auto": llama.cpp for GGUF files and the embedded default where it runs (engine/engine.py), else transformers
    backend: str = field(default="auto", metadata={
        "help": "auto (llama.cpp for GGUF models on the CPU or a GPU build of llama.cpp, else "
            "transformers), llamacpp, transformers, vllm, or openai (remote server)"})
    cache_dir: Path = field(default_factory=default_cache_dir, metadata={
        "help": "where converted models are cached (default ~/.cache/dcu-chat)"})
    max_context: int | None = field(default=None, metadata={
        "help": "context window to use, in tokens (default: the model's, at most 8192)"})
    max_queue: int = field(default=32, metadata={
        "help": "requests that may wait for the model before new ones get 'busy'"})
    # KV caches kept for reuse across turns; 0 turns reuse off
    kv_cache_bytes: int = field(default=512 * 1024**2, metadata={
        "help": "memory for KV caches kept to reuse earlier turns (0 turns reuse off)", "option": "kv_cache_mb", "scale": 1048576})
    # requests decoded together in one batch; 1 turns batching off
    max_batch: int = field(default=8, metadata={"help": "requests decoded together (1 turns batching off)"})
    base_url: str | None = field(default=None, metadata={
        "help": "with --backend openai: the server's /v1 URL, e.g. http://10.0.0.5:8000/v1; several replicas "
            "of one model: URLs separated by ';' (requests go to the least busy one that is up)"})
    remote_model: str | None = field(default=None, metadata={
        "help": "with --backend openai: model name on the remote server (default: the first one it "
            "lists)"})
    remote_api_key: str | None = field(default=None, metadata={
        "help": "with --backend openai: API key of the remote server (several URLs: one key for all, or "
            "K1;K2 in --base-url's order)", "secret": True})
    tensor_parallel_size: int = field(default=1, metadata={"help": "with --backend vllm: number of cards"})
    # llama.cpp: layers offloaded to the GPU; None = all when the build offloads
    gpu_layers: int | None = field(default=None, metadata={
        "help": "with llama.cpp: layers to offload to the GPU (-1 all, 0 none; default: all when the "
            "installed llama.cpp build can offload)"})

    # llama.cpp's n-gram drafting is a server setting (no per-request field): measured in
    # docs/performance.md, it slowed plain chat by up to 27 % on a CPU, so it is off by default.
    llamacpp_prompt_lookup: int = field(default=0, metadata={
        "help": "with llama.cpp: draft up to N tokens by n-gram lookup in the prompt for every request (speeds "
            "up copying answers such as code fixes, slows others; turns flash attention off; 0 off)"})

    # Images (engine/images.py): remote and vLLM models say whether they see; llama.cpp needs the projector.
    vision: bool = field(default=False, metadata={
        "help": "with --backend openai: the remote model reads images (OpenAI image_url parts are passed "
            "through); transformers models with a vision_config and llama.cpp models with --mmproj are known to"})
    mmproj: str | None = field(default=None, metadata={
        "help": "with llama.cpp: the model's multimodal projector GGUF (mmproj-*.gguf), so it reads images "
            "(per model: --model NAME=model.gguf,mmproj=mmproj.gguf)"})

    def __post_init__(self) -> None:
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)} (got {self.device!r}).")
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)} (got {self.dtype!r}).")
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"--quantization must be auto, none, 4bit, 8bit or int8 (got {self.quantization!r}).")
        if self.quantization == "none" or (self.quantization == "auto" and self.backend not in ("auto", "transformers")):
            object.__setattr__(self, "quantization", None)  # "auto" is a decision of the in-process backend
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)} (got {self.backend!r}).")
        if self.backend == "openai" and not self.base_url:
            raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1.")
        base_url, key = normalize_upstreams(self.base_url, self.remote_api_key)  # a TOML list -> "A;B"
        object.__setattr__(self, "base_url", base_url)
        object.__setattr__(self, "remote_api_key", key)
        if self.backend == "openai":
            upstreams(base_url, key)  # checked now: a wrong list fails at start, not at first use
        if self.gpu_layers is not None and self.gpu_layers < -1:
            raise ConfigError(f"--gpu-layers must be -1 (all), 0 (none) or a layer count (got {self.gpu_layers}).")
        if self.llamacpp_prompt_lookup < 0:
            raise ConfigError(f"--llamacpp-prompt-lookup must be 0 (off) or a token count (got {self.llamacpp_prompt_lookup}).")
        if self.max_context is not None and self.max_context < 64:
            raise ConfigError(f"--max-context must be at least 64 tokens (got {self.max_context}).")
        if self.kv_cache_bytes < 0:
            raise ConfigError(f"--kv-cache-mb must be 0 (off) or positive (got {self.kv_cache_bytes // 1024**2}).")
        if self.max_batch < 1:
            raise ConfigError(f"--max-batch must be at least 1 (got {self.max_batch}).")
        if self.max_queue < 1:
            raise ConfigError(f"--max-queue must be at least 1 (got {self.max_queue}).")
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())


@dataclass(frozen=True)
class ModelsConfig:
    """How many of the configured models (``--model`` more than once, ``[[models]]``) stay loaded."""

    max_loaded_models: int = field(default=2, metadata={
        "help": "models kept in memory at once; the least recently used is unloaded to load another (0: no "
            "limit; remote models do not count)"})
    memory_budget_bytes: int = field(default=0, metadata={
        "help": "memory the loaded models' weights may take together, in MB; the least recently used is "
            "unloaded to stay under it (0: no budget)", "option": "models_memory_mb", "scale": 1048576})

    def __post_init__(self) -> None:
        if self.max_loaded_models < 0:
            raise ConfigError(f"--max-loaded-models must be 0 (no limit) or positive (got {self.max_loaded_models}).")
        if self.memory_budget_bytes < 0:
            raise ConfigError("--models-memory-mb must be 0 (no budget) or positive "
                              f"(got {self.memory_budget_bytes // 1024**2}).")
