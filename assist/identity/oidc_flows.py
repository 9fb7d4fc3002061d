"""Sign-ins with an OpenID provider that have started and not yet come back: single use, short-lived.

Each flow is kept under its ``state`` (random, 256 bits) with what its callback needs and nobody
else should know: the PKCE verifier, the nonce, the redirect URI, where to go afterwards, and the
digest of a browser secret (a cookie set when the flow started), so that a callback from another
browser (login CSRF: someone else's code pasted into a victim's browser) is refused. ``take``
removes the flow whatever happens next, so a state (and with it its code) works once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from assist.identity.errors import InvalidToken

__all__ = ["PendingFlow", "PendingFlows", "new_browser_secret", "FLOW_SECONDS"]

FLOW_SECONDS = 600  # how long a person may take at the provider's page
_MAX_FLOWS = 10_000  # a flood of started flows forgets the oldest, never grows without bound


def new_browser_secret() -> str:
    return secrets.token_urlsafe(32)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingFlow:
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str
    browser_digest: str
    expires_at: float


class PendingFlows:
    def __init__(self, seconds: float = FLOW_SECONDS, clock=time.monotonic) -> None:
        self.seconds, self._clock = seconds, clock
        self._flows: OrderedDict[str, PendingFlow] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, browser_secret: str, redirect_uri: str, next_path: str) -> PendingFlow:
        flow = PendingFlow(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64),
                           redirect_uri, next_path, _digest(browser_secret), self._clock() + self.seconds)
        with self._lock:
            self._forget_expired()
            while len(self._flows) >= _MAX_FLOWS:
                self._flows.popitem(last=False)
            self._flows[flow.state] = flow
        return flow

    def take(self, state: str, browser_secret: str | None) -> PendingFlow:
        """The flow of ``state``, removed; ``InvalidToken`` when unknown, used, expired or another browser's."""
        with self._lock:
            flow = self._flows.pop(state or "", None)
            self._forget_expired()
        if flow is None:
            raise InvalidToken("unknown or already used state")
        if flow.expires_at <= self._clock():
            raise InvalidToken("the sign-in took too long")
        if not browser_secret or not hmac.compare_digest(_digest(browser_secret), flow.browser_digest):
            raise InvalidToken("the sign-in was started in another browser")
        return flow

    def discard(self, state: str | None) -> None:
        with self._lock:
            self._flows.pop(state or "", None)

    def __len__(self) -> int:
        return len(self._flows)

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._flows:
            first = next(iter(self._flows.values()))
            if first.expires_at > now:
                break
            self._flows.popitem(last=False)
