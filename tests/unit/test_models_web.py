"""Several models through the web edge, with fake engines: /v1 routing and listing, /api/health,
the model selector of each tab, loading notices, and unloading seen from outside."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from docs_support import make_pdf, make_services
from fakes import FakeModelLoader, fake_models
from fastapi.testclient import TestClient

from assist.answers import answer_stream
from engine.stats import GenerationStats
from webui.api import build_api
from webui.chat_tab import ChatHandlers, build_chat_tab
from webui.code_tab import build_code_tab
from webui.services import Services
from webui.system_tab import render_markdown, system_snapshot

USER = [{"role": "user", "content": "Say hello"}]


def request(session: str = "s1"):
    return SimpleNamespace(session_hash=session, headers={"accept-language": "en-US"})


@pytest.fixture()
def loader():
    return FakeModelLoader()


@pytest.fixture()
def client(loader):
    models = fake_models("small", "big", max_loaded=1, loader=loader)
    models.engine()  # the default, loaded at start as app.py does
    return TestClient(build_api(Services(models=models)), raise_server_exceptions=False)


def ask(client, model: str, **body):
    return client.post("/v1/chat/completions", json={"model": model, "messages": USER, **body})


def test_v1_lists_every_model_and_routes_each_request_to_the_one_it_names(client, loader):
    listed = client.get("/v1/models").json()["data"]
    assert [(m["id"], m["x_loaded"], m["x_default"]) for m in listed] == [("small", True, True), ("big", False, False)]
    reply = ask(client, "big").json()
    assert reply["model"] == "big" and reply["choices"][0]["message"]["content"] == "answer from /models/big"
    reply = ask(client, "default").json()
    assert reply["model"] == "small" and reply["choices"][0]["message"]["content"] == "answer from /models/small"
    streamed = ask(client, "big", stream=True).text
    assert '"model": "big"' in streamed.replace('":"', '": "') and "answer" in streamed
    assert client.get("/v1/models/big").json()["id"] == "big"


def test_with_room_for_one_the_least_recently_used_goes_and_comes_back(client, loader):
    ask(client, "big")
    small, big = loader.engines[0], loader.engines[1]
    assert small.closed and not big.closed
    listed = {m["id"]: m["x_loaded"] for m in client.get("/v1/models").json()["data"]}
    assert listed == {"small": False, "big": True}
    assert ask(client, "small").status_code == 200  # loads again on use
    assert big.closed and loader.loads == ["/models/small", "/models/big", "/models/small"]


def test_an_unknown_model_is_a_404_naming_the_served_ones(client):
    response = ask(client, "gpt-4o")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "'small', 'big'" in error["message"]
    assert client.get("/v1/models/gpt-4o").status_code == 404


def test_health_and_the_system_tab_list_the_models(client, loader):
    health = client.get("/api/health").json()
    assert health["default_model"] == "small" and health["model"] == "/models/small-name"
    assert [(m["id"], m["loaded"]) for m in health["models"]] == [("small", True), ("big", False)]
    services = Services(models=fake_models("small", "big", loader=loader))
    services.models.engine("big")
    snap = system_snapshot(services, smi=False)
    assert snap["model"]["name"] == "/models/big-name"  # the default is not in memory: the one that is
    assert "**big**: /models/big-name" in render_markdown(snap)
    page = render_markdown(snap)
    assert "**small** (default): not loaded" in page and "**big**: loaded" in page


def test_the_chat_tab_answers_with_the_chosen_model_after_a_loading_notice(loader):
    handlers = ChatHandlers(fake_models("small", "big", loader=loader))
    seen = [dict(h[-1]) for _, h, _ in handlers.respond("hi", history=[], model="big", request=request())]
    notices = [m["stats"] for m in seen if m["role"] == "assistant" and not m["content"]]
    header = "Loading the model big (first use; this can take a while)…"
    assert notices == [header, f"{header} loading /models/big"]
    assert seen[-1]["content"] == "answer from /models/big" and "TTFT" in seen[-1]["stats"]
    again = [dict(h[-1]) for _, h, _ in handlers.respond("hi", history=[], model="big", request=request())]
    assert not any("Loading" in m.get("stats", "") for m in again)  # in memory now
    with pytest.raises(gr.Error, match="'nope' does not exist"):
        list(handlers.respond("hi", history=[], model="nope", request=request()))


def test_every_tab_has_a_model_selector_when_there_are_several(tmp_path, loader):
    models = fake_models("small", "big", loader=loader)
    with gr.Blocks() as demo:
        build_chat_tab(Services(models=models))
        build_code_tab(models)
    pickers = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and b.elem_id in ("chat-model",
                                                                                              "code-model")]
    assert len(pickers) == 2
    assert all(p.visible and p.value == "small" and [c[1] for c in p.choices] == ["small", "big"] for p in pickers)
    with gr.Blocks() as single:
        build_chat_tab(Services(models=fake_models("only", loader=loader)))
    assert not next(b for b in single.blocks.values() if getattr(b, "elem_id", None) == "chat-model").visible


def test_document_answers_use_the_chosen_model(tmp_path, loader):
    services = make_services(tmp_path, fake_models("small", "big", loader=loader))  # a registry is also taken
    services.store.add_files("default", [("pump.pdf", make_pdf(["The X200 pump has a warranty of 36 months."]))])
    items = list(answer_stream(services, "default", "What is the warranty of the X200 pump?", model="big"))
    answer = "".join(i for i in items if isinstance(i, str))
    assert answer.startswith("answer from /models/big") and isinstance(items[-1], GenerationStats)
    assert loader.loads == ["/models/big"]


def test_a_model_that_fails_to_load_says_why_and_the_others_keep_serving(loader):
    from engine.errors import ModelLoadError

    def load(config, progress):
        if config.model == "/models/broken":
            raise ModelLoadError("GGUF file /models/broken does not exist. Check the path passed to --model.")
        return loader(config, progress)

    models = fake_models("small", "broken", loader=load)
    models.engine()
    client = TestClient(build_api(Services(models=models)), raise_server_exceptions=False)
    failed = ask(client, "broken")
    assert failed.status_code == 500 and "does not exist" in failed.json()["error"]["message"]
    assert ask(client, "small").json()["choices"][0]["message"]["content"] == "answer from /models/small"
    assert {m["id"]: m["x_loaded"] for m in client.get("/v1/models").json()["data"]} == {"small": True,
                                                                                        "broken": False}
    with pytest.raises(gr.Error, match="does not exist"):
        list(ChatHandlers(models).respond("hi", history=[], model="broken", request=request()))
