"""Failed sign-ins counted per key (a user name, an address) in a sliding window.

After ``limit`` failures within ``window_s`` seconds a key is blocked until the oldest of them
ages out; blocked attempts are refused before any password is checked, so a blocked guesser
learns nothing, not even from a right password. A success clears the user's count, not the
address's: one good account must not reset a guesser's budget from the same address.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["FailureThrottle"]


class FailureThrottle:
    def __init__(self, limit: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.limit, self.window_s, self._clock, self._max_keys = limit, window_s, clock, max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, keys: Iterable[str]) -> int:
        """Seconds until an attempt for all of ``keys`` is allowed again; 0 when it is now."""
        now, wait = self._clock(), 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.limit:
                    wait = max(wait, times[-self.limit] + self.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:  # a flood of made-up names: forget the stalest
                for key in list(self._failures)[: self._max_keys // 10]:
                    del self._failures[key]
            for key in keys:
                self._failures.setdefault(key, deque(maxlen=self.limit * 4)).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
