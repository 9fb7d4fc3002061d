"""Chat presets on real SQLite: built-ins, a user's own (save, update, delete, owners), parameter
checks, ``/api/presets`` and the UI handlers (Chat dropdown values, Settings form)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from fakes import FakeEngine
from fastapi.testclient import TestClient

from assist.presets import BUILTIN_PRESETS, PresetError, PresetNotFound, PresetStore
from assist.sessions import SessionStore
from webui.api import build_api
from webui.presets import DEFAULTS, PresetHandlers
from webui.services import Services, WebConfig


@pytest.fixture
def store(tmp_path):
    store = PresetStore(tmp_path / "presets.sqlite3")
    yield store
    store.close()


def request(user: str | None = None, lang: str = "en-US"):
    return SimpleNamespace(session_hash="tab", username=user, headers={"accept-language": lang})


def test_built_ins_are_offered_in_english_and_chinese(store):
    names = [p.name for p in store.list("anyone")]
    assert names[:len(BUILTIN_PRESETS)] == [p.name for p in BUILTIN_PRESETS]
    assert any("Translator zh↔en" in n for n in names) and any("代码审查" in n for n in names)
    assert any("Concise" in n for n in names)
    with pytest.raises(PresetError, match="cannot be deleted"):
        store.delete("anyone", "builtin-concise")


def test_save_update_delete_and_owners(store, tmp_path):
    mine = store.save("alice", "  Terse   reviewer ", "Be terse.", {"temperature": 0.2, "max_new_tokens": 128})
    assert mine.name == "Terse reviewer" and mine.params == {"temperature": 0.2, "max_new_tokens": 128}
    again = store.save("alice", "Terse reviewer", "Be very terse.")  # the same name: updated, not duplicated
    assert again.id == mine.id and store.get("alice", mine.id).system_prompt == "Be very terse."
    renamed = store.save("alice", "Short", "x", preset_id=mine.id)
    assert renamed.id == mine.id and [p.name for p in store.list("alice")][-1] == "Short"
    with pytest.raises(PresetNotFound):
        store.get("bob", mine.id)  # someone else's preset does not exist for you
    with pytest.raises(PresetNotFound):
        store.save("bob", "Stolen", preset_id=mine.id)
    copy = store.save("bob", "My translator", "y", preset_id="builtin-translator")  # a copy, never the built-in
    assert copy.id.startswith("p-") and store.get("bob", "builtin-translator").system_prompt != "y"
    store.delete("alice", mine.id)
    with pytest.raises(PresetNotFound):
        store.delete("alice", mine.id)
    reopened = PresetStore(tmp_path / "presets.sqlite3")
    assert [p.name for p in reopened.list("bob") if not p.builtin] == ["My translator"]
    reopened.close()


@pytest.mark.parametrize("params, problem", [
    ({"temperature": 5}, "temperature must be a number from 0 to 2"),
    ({"top_k": "many"}, "top_k must be a number"),
    ({"seed": 1}, "Unknown parameter 'seed'"),
    ([1, 2], "must be an object"),
    ({"top_p": float("nan")}, "top_p must be a number"),
])
def test_bad_parameters_are_refused(store, params, problem):
    with pytest.raises(PresetError, match=problem):
        store.save("alice", "x", "", params)
    with pytest.raises(PresetError, match="name of 1-60"):
        store.save("alice", "   ")
    assert [p for p in store.list("alice") if not p.builtin] == []


def test_api_lists_saves_and_deletes_the_callers_presets(tmp_path):
    services = Services(engine=FakeEngine(), web=WebConfig(data_dir=tmp_path),
                        sessions=SessionStore(tmp_path / "sessions.sqlite3"))
    assert services.presets is not None  # made beside the conversations
    client = TestClient(build_api(services), raise_server_exceptions=False)
    listed = client.get("/api/presets").json()["presets"]
    assert [p["id"] for p in listed] == [p.id for p in BUILTIN_PRESETS] and listed[0]["builtin"] is True
    created = client.post("/api/presets", json={"name": "Poet", "system_prompt": "Answer in verse.",
                                                "params": {"temperature": 1.2}})
    assert created.status_code == 201 and created.json()["params"] == {"temperature": 1.2}
    pid = created.json()["id"]
    updated = client.post("/api/presets", json={"id": pid, "name": "Poet", "system_prompt": "Rhyme."})
    assert updated.status_code == 200 and updated.json()["system_prompt"] == "Rhyme."
    bad = client.post("/api/presets", json={"name": "x", "params": {"top_p": 3}})
    assert bad.status_code == 400 and "top_p" in bad.json()["error"]["message"]
    assert client.delete("/api/presets/builtin-concise").status_code == 400
    assert client.delete(f"/api/presets/{pid}").json() == {"deleted": pid}
    assert client.delete(f"/api/presets/{pid}").status_code == 404


def test_chat_dropdown_values_and_settings_form(store):
    handlers = PresetHandlers(store, default_system_prompt="the default")
    saved = store.save("local", "Cold", "Be exact.", {"temperature": 0.0})
    choices = handlers.choices(request())
    assert choices[0] == ("Default", "") and (saved.name, saved.id) in choices
    assert handlers.choices(request(lang="zh-CN"))[0] == ("默认", "")
    assert handlers.values(saved.id, request()) == ("Be exact.", 0.0, None, None, None, None)  # None: unchanged
    assert handlers.values("", request()) == ("the default", *DEFAULTS.values())
    assert handlers.form(saved.id, request())[:4] == ("Cold", "Be exact.", "0", "")
    assert "built-in" in handlers.form("builtin-concise", request())[-1]
    _, new_id, note = handlers.save(None, "Warm", "Be kind.", "1.1", None, "", " 300 ", "", request=request())
    assert note == "Saved “Warm”." and store.get("local", new_id).params == {"temperature": 1.1, "max_new_tokens": 300}
    with pytest.raises(gr.Error, match="from 16 to 4096"):
        handlers.save(None, "Tiny", "", None, None, None, "3", None, request=request())
    with pytest.raises(gr.Error, match="top_p must be a number"):
        handlers.save(None, "Odd", "", None, "lots", None, None, None, request=request())
    choices, note = handlers.delete(new_id, request())
    assert new_id not in {v for _, v in choices} and note == "Deleted."
    with pytest.raises(gr.Error, match="does not exist"):
        handlers.values(new_id, request())
