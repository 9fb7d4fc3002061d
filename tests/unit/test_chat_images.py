"""Images in Chat: the 🖼 button only for models that can see, pictures checked when picked, thumbnails on
the question, sent to the model, saved with the conversation (reload, regenerate, export, import)."""

from __future__ import annotations

import io
import json
import sqlite3
from types import SimpleNamespace

import pytest
from fakes import FakeEngine

from assist.sessions import LOCAL_OWNER, SessionStore
from assist.tools.transcript import readable
from engine.config import EngineConfig
from engine.images import data_url
from engine.model_spec import ModelSpec
from engine.models import ModelRegistry
from webui.adapters import display_history
from webui.chat_images import ChatImages, thumbs_html
from webui.chat_sessions import ChatSessions
from webui.chat_tab import ChatHandlers


class SeeingEngine(FakeEngine):
    sees_images = True


def request(session: str = "tab1", lang: str = "en-US"):
    return SimpleNamespace(session_hash=session, username=None, headers={"accept-language": lang})


def last(generator):
    *_, final = generator
    return final


def png(color=(200, 30, 30), size=(40, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def chat(engine=None, sessions=None):
    engine = engine or SeeingEngine("A red square.")
    images = ChatImages(ModelRegistry.of(engine))
    return ChatHandlers(engine, sessions=sessions, images=images), engine, images


def test_pictures_are_checked_when_picked_and_wait_as_thumbnails(tmp_path):
    _, _, images = chat()
    good, bad = tmp_path / "red.png", tmp_path / "notes.png"
    good.write_bytes(png())
    bad.write_bytes(b"not a picture")
    with pytest.warns(UserWarning, match="notes.png is not a picture"):  # gr.Warning, outside an event
        waiting, clear = images.add([str(good), str(bad), str(good)], request())
    assert images.waiting(request()) == [data_url(png())]  # the bad one left out, the same one once
    assert '<img class="dcu-thumb" src="data:image/jpeg;base64,' in waiting and clear["visible"] is True
    assert images.waiting(request("tab2")) == []  # per browser tab
    assert images.clear(request())[0] == "" and images.waiting(request()) == []


def test_the_image_button_shows_only_for_models_that_can_see():
    specs = [ModelSpec("text", EngineConfig(backend="openai", base_url="http://a.test/v1")),
             ModelSpec("eyes", EngineConfig(backend="openai", base_url="http://b.test/v1", vision=True))]
    images = ChatImages(ModelRegistry(specs))
    assert images.button("text")["visible"] is False
    assert images.button("eyes")["visible"] is True
    assert images.button(None)["visible"] is False  # the default: the first


def test_a_question_with_pictures_sends_them_and_shows_thumbnails():
    handlers, engine, images = chat()
    images.put(request(), [data_url(png())])
    display, history, box = last(handlers.respond("What is this?", history=[], request=request()))
    assert history[0]["images"] == [data_url(png())] and images.waiting(request()) == []
    sent = engine.calls[-1]["messages"][-1]
    assert sent == {"role": "user", "content": "What is this?", "images": [data_url(png())]}
    assert 'class="dcu-thumb"' in display[0]["content"] and "What is this?" in display[0]["content"]
    assert box == ""


def test_thumbnails_are_small_and_only_of_readable_pictures():
    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((1200, 900), 64).convert("RGB").save(buffer, format="PNG")  # a photo-like picture
    big = data_url(buffer.getvalue())
    html = thumbs_html([big, "data:image/png;base64,AAAA", 'x" onerror="alert(1)'], "zh")
    assert html.count("<img") == 1 and "onerror" not in html and 'alt="图片 1"' in html
    assert len(html) < len(big) / 10
    shown = display_history([{"role": "user", "content": "<b>hi</b>", "images": [big]}])[0]["content"]
    assert "<b>hi</b>" not in shown and shown.count("<img") == 1  # the text stays text; one thumbnail


def test_pictures_are_saved_with_the_question_and_sent_again_after_a_reload_and_a_regenerate(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    sessions = ChatSessions(store, tmp_path / "exports")
    handlers, _, images = chat(sessions=sessions)
    images.put(request(), [data_url(png())])
    last(handlers.respond("What is this?", history=[], request=request()))
    [saved] = store.list(LOCAL_OWNER)
    assert store.get(saved.id, LOCAL_OWNER).messages[0]["images"] == [data_url(png())]

    reopened = ChatSessions(store, tmp_path / "exports")  # a reload (or a restart) in another tab
    view = reopened.open(saved.id, request=request("tab2"))
    assert view.history[0]["images"] == [data_url(png())]
    handlers2, engine2, _ = chat(SeeingEngine("Still red."), reopened)
    _, history, _ = last(handlers2.respond("And now?", history=view.history, request=request("tab2")))
    first = user_turns(engine2)[0]
    assert first["images"] == [data_url(png())] and "images" not in engine2.calls[-1]["messages"][-1]
    last(handlers2.regenerate("", 0, 1, 0, 64, 1.0, -1, history, request=request("tab2")))
    assert user_turns(engine2)[0]["images"] == [data_url(png())]

    assert "_Images: 1_" in store.export(saved.id, LOCAL_OWNER, "md")[1]
    exported = json.loads(store.export(saved.id, LOCAL_OWNER, "json")[1])
    assert exported["messages"][0]["images"] == [data_url(png())]
    imported = store.import_json(LOCAL_OWNER, exported)
    assert imported.messages[0]["images"] == [data_url(png())]
    exported["messages"][0]["images"] = ["https://example.com/x.png"]
    with pytest.raises(Exception, match="data: URL"):
        store.import_json(LOCAL_OWNER, exported)
    store.close()


def user_turns(engine) -> list[dict]:
    return [m for m in engine.calls[-1]["messages"] if m["role"] == "user"]


def test_edit_last_puts_the_pictures_back_to_wait():
    handlers, _, images = chat()
    images.put(request(), [data_url(png())])
    _, history, _ = last(handlers.respond("What is this?", history=[], request=request()))
    _, kept, box = handlers.edit_last(history, request())
    assert kept == [] and box == "What is this?" and images.waiting(request()) == [data_url(png())]


def test_a_model_that_reads_text_only_gets_earlier_questions_without_their_pictures():
    history = [{"role": "user", "content": "What is this?", "images": [data_url(png())]},
               {"role": "assistant", "content": "A red square."},
               {"role": "user", "content": "Write a poem about it."}]
    blind = FakeEngine("Roses are red.")
    handlers = ChatHandlers(blind)
    last(handlers.regenerate("", 0, 1, 0, 64, 1.0, -1, history, request=request()))
    assert all("images" not in m for m in blind.calls[-1]["messages"])
    assert readable(history, SeeingEngine()) == history
    assert readable(history, blind)[0] == {"role": "user", "content": "What is this?"} and "images" in history[0]


def test_an_older_conversation_database_gets_the_images_column(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    SessionStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE messages DROP COLUMN images")
    store = SessionStore(path)  # opening it again brings the table up to date
    session = store.create(LOCAL_OWNER, messages=[{"role": "user", "content": "hi", "images": [data_url(png())]},
                                                  {"role": "assistant", "content": "hello"}])
    assert store.get(session.id, LOCAL_OWNER).messages[0]["images"] == [data_url(png())]
    store.close()


def test_the_chat_tab_has_the_image_button_only_where_a_model_can_see():
    from webui.app import build_app
    from webui.services import Services

    def ids(engine) -> set[str]:
        blocks = build_app(Services(engine=engine))
        return {getattr(block, "elem_id", None) for block in blocks.blocks.values()}

    assert {"chat-attach-image", "chat-images-waiting"} <= ids(SeeingEngine())
    assert "chat-attach-image" not in ids(FakeEngine())


def test_a_question_edited_in_place_keeps_its_pictures_and_not_their_thumbnails():
    from webui.chat_branches import BranchHandlers, edited_text

    handlers, engine, images = chat()
    images.put(request(), [data_url(png())])
    display, history, _ = last(handlers.respond("What is this?", history=[], request=request()))
    assert edited_text(display[0]["content"]) == "What is this?"
    event = SimpleNamespace(index=0, value="What colour is this?")
    last(BranchHandlers(handlers).edit(event, "", 0, 1, 0, 64, 1.0, -1, history, request=request()))
    assert user_turns(engine)[-1] == {"role": "user", "content": "What colour is this?", "images": [data_url(png())]}
