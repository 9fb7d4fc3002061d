"""Malformed requests never reach a 500: every /v1 and /api route answers 4xx in our error JSON.

A property-based fuzz test (hypothesis) drives the routes of ``build_api`` through FastAPI's
TestClient with random JSON (surrogates, huge numbers, deep nesting, wrong types), random bytes
and valid bodies with one field replaced, over a real session store and document store. The
engine is a fake that encodes its input as UTF-8 like a real tokenizer does, so text no real
model could take fails here too.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from docs_support import make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assist.sessions import SessionStore
from webui.api import build_api


class TokenizingEngine(FakeEngine):
    """Encodes every message as UTF-8 first, as a tokenizer does (a lone surrogate fails)."""

    def count_tokens(self, text: str) -> int:
        return len(text.encode("utf-8").split())

    def stream_chat(self, messages, params=None, session_id=None, cancel=None):
        for message in messages:
            message["content"].encode("utf-8")
        yield from super().stream_chat(messages, params, session_id, cancel)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz-data")
    services = make_services(data, TokenizingEngine("An answer [1]."))
    services.sessions = SessionStore(data / "sessions.sqlite3")
    services.store.add_files("default", [("notes.txt", b"The cafeteria opens at 8 am on weekdays.")])
    with TestClient(build_api(services), raise_server_exceptions=False) as client:
        yield client
    services.sessions.close()
    services.store.close()


def assert_answered(response) -> None:
    """No 5xx; every error is our JSON ``{"error": {"message": str, "type": str, ...}}``."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), response.text[:200]
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str) and error["type"]


# Every character hypothesis knows, lone surrogates included.
any_text = st.text(st.characters(codec=None, categories=None), max_size=40)
numbers = st.one_of(st.integers(), st.integers(min_value=-(10**400), max_value=10**400),
                    st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), numbers, any_text),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(any_text, inner, max_size=4)),
                           max_leaves=20)

CHAT = {"model": "default", "messages": [{"role": "user", "content": "When does the cafeteria open?"}],
        "max_tokens": 8, "temperature": 0.5, "top_k": 5, "seed": 1, "stop": ["\n\n"], "stream": False}
BODIES = {
    "/v1/chat/completions": CHAT,
    "/v1/embeddings": {"model": "default", "input": ["cafeteria"], "encoding_format": "float"},
    "/api/collections": {"name": "fuzzed"},
    "/api/collections/default/search": {"query": "cafeteria", "top_k": 3},
    "/api/collections/default/ask": {"question": "When does the cafeteria open?", "top_k": 2, "stream": False,
                                     "strict": False, "max_tokens": 8, "temperature": 0.2,
                                     "history": [{"role": "user", "content": "hi"}]},
    "/api/sessions/import": {"title": "t", "system_prompt": "", "messages": [{"role": "user", "content": "hi"}]},
    "/api/collections/default/sharing": {"users": ["bob"], "all": False, "mode": "read"},
}
METHODS = {"/api/collections/default/sharing": "PUT"}  # the rest are POST
PATHS = sorted(BODIES)


def _replace(body, path: list, value):
    """``body`` with the item at ``path`` (keys/indexes) set to ``value``; a fresh copy."""
    if not path:
        return value
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def _leaves(value, prefix=()):
    yield list(prefix)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*prefix, index))


def _encode(value) -> bytes:
    # ensure_ascii spells a lone surrogate as the escape "\udXXX", exactly what clients send.
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode("ascii")


FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values)
def test_random_json_bodies(client, path, value):
    assert_answered(client.request(METHODS.get(path, "POST"), path, content=_encode(value),
                                   headers={"content-type": "application/json"}))


@FUZZ
@given(path=st.sampled_from(PATHS), data=st.data())
def test_valid_bodies_with_one_field_replaced(client, path, data):
    body = BODIES[path]
    where = data.draw(st.sampled_from(list(_leaves(body))))
    value = data.draw(json_values)
    assert_answered(client.request(METHODS.get(path, "POST"), path, content=_encode(_replace(body, where, value)),
                                   headers={"content-type": "application/json"}))


@FUZZ
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=200),
       content_type=st.sampled_from(["application/json", "text/plain", "application/octet-stream", ""]))
def test_random_bytes(client, path, raw, content_type):
    headers = {"content-type": content_type} if content_type else {}
    assert_answered(client.request(METHODS.get(path, "POST"), path, content=raw, headers=headers))


@FUZZ
@given(segment=any_text.filter(bool), query=any_text)
def test_random_ids_and_query_strings(client, segment, query):
    ident = quote(segment.encode("utf-8", "surrogatepass"), safe="")
    q = quote(query.encode("utf-8", "surrogatepass"), safe="")
    for method, url in [("GET", f"/api/sessions/{ident}"), ("GET", f"/api/sessions/{ident}/export?format={q}"),
                        ("DELETE", f"/api/sessions/{ident}"), ("GET", f"/api/sessions?q={q}"),
                        ("GET", f"/api/collections/{ident}/documents"), ("GET", f"/api/collections/{ident}/sharing"),
                        ("GET", f"/api/jobs/{ident}"), ("GET", f"/api/jobs?collection={q}"),
                        ("DELETE", f"/api/collections/default/documents/{ident}"),
                        ("GET", f"/v1/models/{ident}")]:
        assert_answered(client.request(method, url))


# -- the cases the issue names, spelled out -------------------------------------------------------

def post(client, path: str, raw: bytes):
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def test_a_lone_surrogate_is_a_400_not_a_500(client):
    response = post(client, "/v1/chat/completions",
                    b'{"model": "default", "messages": [{"role": "user", "content": "\\ud800 hi"}]}')
    assert response.status_code == 400 and "surrogate" in response.json()["error"]["message"]
    assert response.json()["error"]["type"] == "invalid_request_error"
    response = post(client, "/api/sessions/import", b'{"messages": [{"role": "user", "content": "\\udfff"}]}')
    assert response.status_code == 400 and "surrogate" in response.json()["error"]["message"]
    # A real pair (an emoji spelled as escapes) is a character and goes through.
    ok = post(client, "/v1/chat/completions",
              b'{"model": "default", "messages": [{"role": "user", "content": "\\ud83d\\ude00 hi"}]}')
    assert ok.status_code == 200


def test_bad_utf8_deep_nesting_and_huge_numbers(client):
    response = post(client, "/v1/chat/completions", b'{"model": "default", "messages": "\xff\xfe"}')
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]["message"]
    for path in ("/v1/chat/completions", "/api/collections/default/search", "/api/sessions/import"):
        assert_answered(post(client, path, b"[" * 100_000 + b"]" * 100_000))
    for field in ("max_tokens", "seed", "top_k"):
        response = post(client, "/v1/chat/completions", _encode({**CHAT, field: 10**30}))
        assert response.status_code == 400 and response.json()["error"]["param"] == field


def test_api_validation_errors_use_our_json(client):
    response = client.post("/api/collections", json={})
    assert response.status_code == 422 and response.json()["error"]["type"] == "InvalidRequest"
    assert "name" in response.json()["error"]["message"]
    response = client.put("/api/collections")
    assert response.status_code == 405 and response.json()["error"]["type"] == "MethodNotAllowed"
