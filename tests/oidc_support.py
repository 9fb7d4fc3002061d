"""A real OpenID provider for the sign-in tests: ``oidc-provider-mock`` (PyPI; authlib inside) served
by werkzeug on 127.0.0.1 in a thread, and the person at its page driven with ``httpx``.

The provider signs ID tokens with its own RSA key (JWKS at /jwks), checks codes (single use, bound
to the client and redirect URI) and offers end_session. Its authorization page is a form that
takes a subject (``sub``); the claims of each subject are set with ``PUT /users/{sub}``. It does
not check PKCE (authlib's CodeChallenge extension is not registered), so our side's checks are the
ones under test.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

# sub -> claims; groups are a plain (non-standard) claim, sent whatever the scope
PEOPLE = {"sub-carol": {"preferred_username": "carol", "email": "carol@example.org", "groups": ["dcu-admins", "staff"]},
          "sub-dave": {"preferred_username": "dave", "email": "dave@example.org", "groups": ["staff"]},
          "sub-bob": {"preferred_username": "bob", "email": "bob@example.org", "groups": []}}
ADMIN_GROUP = "dcu-admins"


@contextmanager
def running_provider(token_max_age: timedelta = timedelta(hours=1)):
    """The provider on a free loopback port: yields its issuer URL; stopped (bounded) on exit.
    A negative ``token_max_age`` makes it issue ID tokens that have expired already."""
    import warnings

    import authlib.deprecate  # noqa: F401  (its import adds an "always" filter: before ours, not after)
    import werkzeug.serving

    with warnings.catch_warnings():  # the mock still imports authlib.jose, which authlib now deprecates
        warnings.simplefilter("ignore")
        from oidc_provider_mock import app as provider_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise in test output
    server = werkzeug.serving.make_server("127.0.0.1", 0, provider_app(require_nonce=True, access_token_max_age=token_max_age), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    issuer = f"http://127.0.0.1:{server.server_port}"
    try:
        for sub, claims in PEOPLE.items():
            httpx.put(f"{issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()
        yield issuer
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def authorize(authorization_url: str, sub: str) -> str:
    """What a person does at the provider's page: pick ``sub`` and authorize; returns the callback
    URL the provider redirects to (with ``code`` and ``state``)."""
    page = httpx.get(authorization_url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    answer = httpx.post(authorization_url, data={"sub": sub}, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:500]
    return answer.headers["location"]


def deny(authorization_url: str) -> str:
    """The person presses Deny at the provider's page: the callback URL with ``error``."""
    answer = httpx.post(authorization_url, data={"action": "deny"}, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:500]
    return answer.headers["location"]


def set_claims(issuer: str, sub: str, claims: dict) -> None:
    httpx.put(f"{issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
