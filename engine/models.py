"""Several models in one server: which are configured, which are loaded, which goes next.

Each configured model (``ModelSpec``: an alias and its own ``EngineConfig``) becomes an
``Engine`` on first use and is unloaded, least recently used first, when loading another would
exceed ``--max-loaded-models`` or the memory budget. A model answering a request is never
unloaded: callers hold it through ``use()`` for as long as they stream from it. Remote models
(``--backend openai``) hold no memory here, so they are neither counted nor unloaded.
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from engine.backends.base import EngineInfo
from engine.config import EngineConfig, ModelsConfig
from engine.errors import ConfigError, EngineBusy, UnknownModel
from engine.images import config_sees_images
from engine.model_spec import DEFAULT_ALIAS, ModelSpec

__all__ = ["ModelCard", "ModelRegistry"]

log = logging.getLogger(__name__)

Loader = Callable[[EngineConfig, Callable[[str], None]], "object"]


@dataclass(frozen=True)
class ModelCard:
    """What the model list shows: a configured model and whether it is in memory now."""

    alias: str
    source: str  # path, hub id, remote URL, or "embedded default"
    backend: str  # as configured ("auto" until loaded); the loaded backend is in ``info``
    loaded: bool
    loading: bool
    default: bool
    weights_bytes: int
    info: EngineInfo | None  # once loaded
    running: int = 0  # requests on it now
    sees_images: bool = False  # user turns may carry images (engine/images.py)
    replicas: tuple[dict, ...] = ()  # a loaded remote model's servers (engine/backends/replica_pool.py)

    def to_dict(self) -> dict:
        """Plain data for /api/health and the System tab."""
        row = {"id": self.alias, "source": self.source, "backend": self.backend, "loaded": self.loaded,
               "loading": self.loading, "default": self.default, "running": self.running,
               "weights_bytes": self.weights_bytes, "sees_images": self.sees_images}
        if self.info is not None:
            row.update(name=self.info.model, device=self.info.device, dtype=self.info.dtype,
                       quantization=self.info.quantization, context_length=self.info.context_length)
        if self.replicas:
            row["replicas"] = [dict(r) for r in self.replicas]
        return row


@dataclass
class _Entry:
    spec: ModelSpec
    engine: object | None = None  # engine.engine.Engine once loaded
    users: int = 0  # requests holding it (use())
    last_used: float = 0.0
    loading: bool = False
    weights: int | None = None  # measured on first need
    load_lock: threading.Lock = field(default_factory=threading.Lock)  # one load of this model at a time


class ModelRegistry:
    """The configured models, loaded on first use and unloaded least recently used."""

    def __init__(self, specs: Sequence[ModelSpec], config: ModelsConfig | None = None,
                 loader: Loader | None = None) -> None:
        if not specs:
            raise ConfigError("Configure at least one model.")
        seen: dict[str, ModelSpec] = {}
        for spec in specs:
            if spec.alias in seen:
                raise ConfigError(f"Two models are both called {spec.alias!r}; give one a name of its own "
                                  f"(--model NAME=PATH, or alias = \"…\" in [[models]]).")
            seen[spec.alias] = spec
        self.config = config or ModelsConfig()
        self._entries = {spec.alias: _Entry(spec) for spec in specs}
        self.default = specs[0].alias
        self._load = loader or _load_engine
        self._lock = threading.Lock()  # guards the entries' engine/users/loading fields
        # Called with (alias, engine) after each load: metrics hook the new engine's observers.
        self.on_load: list[Callable[[str, object], None]] = []
        self.metrics = None  # engine.metrics.ServedMetrics, attached by metrics_for

    @classmethod
    def single(cls, engine, alias: str | None = None) -> ModelRegistry:
        """A registry of one model that is loaded already (tests, embedding this app)."""
        config = getattr(engine, "config", None) or EngineConfig()
        spec = ModelSpec(alias or engine.info.model, config)
        registry = cls([spec], ModelsConfig(max_loaded_models=1))
        entry = registry._entries[spec.alias]
        entry.engine, entry.last_used, entry.weights = engine, time.monotonic(), 0
        return registry

    @classmethod
    def of(cls, models_or_engine) -> ModelRegistry:
        """``models_or_engine`` itself if it is a registry, else a registry of that one loaded engine."""
        return models_or_engine if isinstance(models_or_engine, ModelRegistry) else cls.single(models_or_engine)

    # -- names ----------------------------------------------------------------------------------

    @property
    def aliases(self) -> list[str]:
        return list(self._entries)

    def resolve(self, name: str | None) -> str:
        """The alias a request's ``model`` means: an alias, ``default``, or a loaded model's own name."""
        if not name or name == DEFAULT_ALIAS:
            return self.default
        if name in self._entries:
            return name
        for alias, entry in self._entries.items():
            engine = entry.engine
            if (engine is not None and engine.info.model == name) or entry.spec.config.model == name:
                return alias
        raise UnknownModel(name, self.aliases)

    def sees_images(self, name: str | None = None) -> bool:
        """Whether the model reads images: the loaded backend's word, else its configuration's."""
        entry = self._entries[self.resolve(name)]
        return _sees(entry.engine, entry.spec.config)

    def vision_models(self) -> list[str]:
        """The served models that read images, in configured order."""
        return [alias for alias in self._entries if self.sees_images(alias)]

    # -- use ------------------------------------------------------------------------------------

    def is_loaded(self, name: str | None = None) -> bool:
        return self._entries[self.resolve(name)].engine is not None

    def loaded(self) -> dict[str, object]:
        """alias -> Engine, for the models in memory now (default first)."""
        with self._lock:
            return {alias: e.engine for alias, e in self._entries.items() if e.engine is not None}

    @contextmanager
    def use(self, name: str | None = None, progress: Callable[[str], None] | None = None) -> Iterator:
        """The model's Engine, loaded if needed, kept in memory until the block ends."""
        entry = self._entries[self.resolve(name)]
        engine = self._acquire(entry, progress)
        try:
            yield engine
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = time.monotonic()

    def engine(self, name: str | None = None, progress: Callable[[str], None] | None = None):
        """The model's Engine, loaded if needed, for a short call (token counts, status)."""
        with self.use(name, progress) as engine:
            return engine

    def loading_messages(self, name: str | None = None) -> Iterator[str]:
        """Load the model in the background, yielding its progress messages; nothing if it is loaded.

        For the UI, which shows each message while the (minutes-long) load runs. A failure is
        raised here, as the engine's own error.
        """
        entry = self._entries[self.resolve(name)]
        if entry.engine is not None:
            return
        messages: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self.use(entry.spec.alias, messages.put):
                    pass
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)
            finally:
                messages.put(None)

        threading.Thread(target=work, name=f"dcu-chat-load-{entry.spec.alias}", daemon=True).start()
        while (message := messages.get()) is not None:
            yield message
        if failure:
            raise failure[0]

    def _acquire(self, entry: _Entry, progress: Callable[[str], None] | None):
        with self._lock:
            if entry.engine is not None:
                entry.users += 1
                return entry.engine
        with entry.load_lock:  # a second request for the same model waits for the first load
            with self._lock:
                if entry.engine is not None:
                    entry.users += 1
                    return entry.engine
                evicted = self._make_room(entry)
                entry.loading = True
            for alias, engine in evicted:
                log.info("Unloading %s to make room for %s.", alias, entry.spec.alias)
                _close(engine)
            try:
                engine = self._load(entry.spec.config, progress or (lambda message: log.info("%s", message)))
            finally:
                with self._lock:
                    entry.loading = False
            with self._lock:
                entry.engine, entry.users, entry.last_used = engine, entry.users + 1, time.monotonic()
        for hook in self.on_load:
            hook(entry.spec.alias, engine)
        return engine

    def _make_room(self, entry: _Entry) -> list[tuple[str, object]]:
        """Take the least recently used idle models out (under the lock); close them after.

        Raises EngineBusy when the models that would have to go are all answering.
        """
        if entry.spec.remote:
            return []
        local = [e for e in self._entries.values() if e is not entry and not e.spec.remote
                 and (e.engine is not None or e.loading)]
        limit, budget = self.config.max_loaded_models, self.config.memory_budget_bytes
        need = self._weights(entry) if budget else 0
        if budget and need > budget:
            raise ConfigError(f"{entry.spec.alias} needs {need / 1024**3:.1f} GiB, more than the whole model memory "
                              f"budget ({budget / 1024**3:.1f} GiB); raise --models-memory-mb.")

        def over() -> bool:
            return (bool(limit) and len(local) >= limit) or \
                (bool(budget) and sum(self._weights(e) for e in local) + need > budget)

        evicted = []
        for candidate in sorted((e for e in local if e.engine is not None and e.users == 0
                                 and _idle(e.engine)), key=lambda e: e.last_used):
            if not over():
                break
            evicted.append((candidate.spec.alias, candidate.engine))
            candidate.engine = None
            local.remove(candidate)
        if over():
            # Put back what we took: nothing is unloaded for a load that cannot happen.
            for alias, engine in evicted:
                self._entries[alias].engine = engine
            busy = ", ".join(e.spec.alias for e in local)
            raise EngineBusy(f"{entry.spec.alias} cannot be loaded now: the models in memory ({busy}) are all "
                             "answering, and loading another would exceed --max-loaded-models or the memory "
                             "budget. Try again in a moment.")
        return evicted

    def _weights(self, entry: _Entry) -> int:
        if entry.weights is None:
            try:
                entry.weights = entry.spec.weights_bytes()
            except Exception as exc:  # an unreadable path fails at load, with the loader's message
                log.debug("weights of %s unknown: %s", entry.spec.alias, exc)
                entry.weights = 0
        return entry.weights

    # -- what the UI and /v1/models show --------------------------------------------------------

    def cards(self) -> list[ModelCard]:
        with self._lock:
            entries = [(e.spec, e.engine, e.loading) for e in self._entries.values()]
        cards = []
        for spec, engine, loading in entries:
            config = spec.config
            source = config.model or (config.base_url if spec.remote else "embedded default")
            status = engine.status() if engine is not None else None
            cards.append(ModelCard(
                alias=spec.alias, source=str(source), backend=status.info.backend if status else config.backend,
                loaded=engine is not None, loading=loading, default=spec.alias == self.default,
                weights_bytes=self._weights(self._entries[spec.alias]) if not spec.remote else 0,
                info=status.info if status else None, running=status.running if status else 0,
                sees_images=_sees(engine, config), replicas=status.backend.replicas if status else ()))
        return cards

    def close(self) -> None:
        """Unload every model (server shutdown)."""
        with self._lock:
            engines = [e.engine for e in self._entries.values() if e.engine is not None]
            for entry in self._entries.values():
                entry.engine = None
        for engine in engines:
            _close(engine)


def _sees(engine, config: EngineConfig) -> bool:
    return bool(getattr(engine, "sees_images", False)) if engine is not None else config_sees_images(config)


def _idle(engine) -> bool:
    queue_ = getattr(engine, "queue", None)
    return queue_ is None or (queue_.active == 0 and queue_.depth == 0)


def _load_engine(config: EngineConfig, progress: Callable[[str], None]):
    from engine.engine import Engine

    return Engine.load(config, progress)


def _close(engine) -> None:
    """Free a model's memory: its backend's own close, then Python's and the card's caches."""
    close = getattr(engine, "close", None)
    if close is not None:
        close()
    del engine
    gc.collect()
    torch = sys.modules.get("torch")  # only where a backend imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
