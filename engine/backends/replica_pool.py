"""The replicas behind one remote model: least-busy choice, health probes and a circuit breaker.

A remote model (``--backend openai``) may name several servers that serve the same model
(vLLM/SGLang replicas on several nodes, llama.cpp servers). Each request goes to the replica
that is up with the fewest requests in flight. A background thread probes every replica every
few seconds (``/health`` at the server's root where it has one, else ``/v1/models``): a replica
is taken out after ``FAILURES_TO_OPEN`` failures in a row (a refused connection takes it out at
once — nothing listens there) and put back as soon as a probe answers again. The counters (in
flight, requests, errors, latency) are what the System tab, ``/api/health`` and ``/metrics`` show.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from engine.errors import ReplicasDown
from engine.upstreams import Upstream

__all__ = ["Replica", "ReplicaPool", "PROBE_INTERVAL_S", "describe"]

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 5.0
PROBE_TIMEOUT_S = 3.0
RECHECK_S = 1.0  # a request finding every replica down probes each again at most this often
FAILURES_TO_OPEN = 2  # failed requests or probes in a row that take a replica out


@dataclass(eq=False)
class Replica:
    """One upstream server and what is known about it now."""

    url: str
    client: httpx.Client
    up: bool = True
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    failures: int = 0  # in a row; reset by any success
    finished: int = 0  # answered to the end (the latency mean is over these)
    latency_sum_s: float = 0.0
    last_error: str = ""
    probed_at: float = 0.0  # time.monotonic() of the last health check
    health_path: str | None = None  # "/health" or "models", found by the first probe that answers
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        """host:port, as messages and the System tab name it."""
        return httpx.URL(self.url).netloc.decode()

    def snapshot(self) -> dict:
        with self._lock:
            done = self.finished
            return {"url": self.url, "name": self.name, "up": self.up, "in_flight": self.in_flight,
                    "requests": self.requests, "errors": self.errors,
                    "latency_s": round(self.latency_sum_s / done, 3) if done > 0 else None,
                    "finished": done, "latency_sum_s": round(self.latency_sum_s, 3), "last_error": self.last_error}


class ReplicaPool:
    """Replicas of one model; thread-safe. ``start()`` begins probing, ``close()`` stops it."""

    def __init__(self, replicas: list[Replica], probe_interval: float = PROBE_INTERVAL_S) -> None:
        if not replicas:
            raise ValueError("a replica pool needs at least one replica")
        self.replicas = replicas
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def connect(cls, servers: list[Upstream], timeout: httpx.Timeout,
                transport: httpx.BaseTransport | None = None, probe_interval: float = PROBE_INTERVAL_S) -> ReplicaPool:
        replicas = []
        for server in servers:
            headers = {"Authorization": f"Bearer {server.api_key}"} if server.api_key else {}
            client = httpx.Client(base_url=server.url + "/", headers=headers, timeout=timeout, transport=transport)
            replicas.append(Replica(server.url, client))
        return cls(replicas, probe_interval)

    # --- choosing and accounting ---

    def choose(self, exclude: tuple[Replica, ...] = ()) -> Replica:
        """The replica that is up with the fewest requests in flight (ties: fewest requests so far).

        With none up, a request's first choice checks them again at once (at most once a second
        each) rather than waiting for the prober: a server that just came back answers now."""
        replica = self._pick(exclude)
        if replica is None and not exclude:
            for candidate in self.replicas:
                if time.monotonic() - candidate.probed_at >= RECHECK_S:
                    self.probe(candidate)
            replica = self._pick(exclude)
        if replica is None:
            raise self.down_error()
        return replica

    def _pick(self, exclude: tuple[Replica, ...]) -> Replica | None:
        with self._lock:
            candidates = [r for r in self.replicas if r.up and r not in exclude]
            return min(candidates, key=lambda r: (r.in_flight, r.requests)) if candidates else None

    def any_other_up(self, exclude: tuple[Replica, ...]) -> bool:
        return any(r.up and r not in exclude for r in self.replicas)

    def down_error(self) -> ReplicasDown:
        reasons = "; ".join(f"{r.name}: {r.last_error or 'down'}" for r in self.replicas)
        if len(self.replicas) == 1:
            return ReplicasDown(f"The model server {self.replicas[0].name} is down ({reasons}). "
                                "Requests resume as soon as it answers its health check again.")
        return ReplicasDown(f"All {len(self.replicas)} model servers of this model are down ({reasons}). "
                            "Requests resume as soon as one answers its health check again.")

    @contextmanager
    def lease(self, replica: Replica) -> Iterator[Replica]:
        """Counts a request in flight on ``replica`` while the block runs."""
        with self._lock, replica._lock:
            replica.in_flight += 1
            replica.requests += 1
        try:
            yield replica
        finally:
            with self._lock, replica._lock:
                replica.in_flight -= 1

    def succeeded(self, replica: Replica, seconds: float) -> None:
        with replica._lock:
            replica.failures = 0
            replica.finished += 1
            replica.latency_sum_s += seconds
            replica.up = True

    def failed(self, replica: Replica, error: str, refused: bool = False, counts: bool = True) -> None:
        """A request failed on ``replica``; ``refused`` (nothing listens) takes it out at once.
        ``counts=False`` records the error without the breaker (the server answered: it is alive)."""
        with self._lock, replica._lock:
            replica.errors += 1
            replica.last_error = error
            if counts:
                replica.failures += 1
                if refused or replica.failures >= FAILURES_TO_OPEN:
                    replica.up = False

    # --- probing ---

    def probe(self, replica: Replica) -> bool:
        """One health check; updates ``up``. ``/health`` at the root first, ``models`` where there is none."""
        replica.probed_at = time.monotonic()
        paths = [replica.health_path] if replica.health_path else ["/health", "models"]
        error = "no answer"
        for path in paths:
            # "/health" is at the server's root (vLLM, SGLang, llama.cpp), not under /v1
            target = str(httpx.URL(replica.url).copy_with(path=path)) if path.startswith("/") else path
            try:
                response = replica.client.get(target, timeout=PROBE_TIMEOUT_S)
            except httpx.HTTPError as exc:
                error, refused = describe(exc), isinstance(exc, httpx.ConnectError)
                break
            if response.status_code == 404 and path == "/health" and len(paths) > 1:
                continue  # this server has no /health: ask /v1/models from now on
            if response.status_code < 400:
                replica.health_path = path
                with self._lock, replica._lock:
                    replica.up, replica.failures = True, 0
                return True
            error, refused = f"health check answered HTTP {response.status_code}", False
            break
        else:
            refused = False
        with self._lock, replica._lock:
            replica.last_error = error
            replica.failures += 1
            if refused or replica.failures >= FAILURES_TO_OPEN:
                replica.up = False
        return False

    def probe_all(self) -> None:
        for replica in self.replicas:
            if self._stop.is_set():
                return
            try:
                self.probe(replica)
            except Exception as exc:  # noqa: BLE001 - the prober must outlive any one odd answer
                log.warning("Health check of %s failed unexpectedly: %r", replica.url, exc)
                with self._lock, replica._lock:
                    replica.last_error = f"health check failed: {exc!r}"[:200]
                    replica.failures += 1
                    replica.up = replica.up and replica.failures < FAILURES_TO_OPEN

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="replica-prober", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.probe_interval):
            self.probe_all()

    def snapshot(self) -> tuple[dict, ...]:
        return tuple(r.snapshot() for r in self.replicas)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT_S * 2 + 1)
        for replica in self.replicas:
            replica.client.close()


def describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"[:200]
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:200]
