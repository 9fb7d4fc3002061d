"""Images in Chat in a real browser, with two tiny random-weight models built here: a vision-language one
(the default) and one that reads text only. The 🖼 button shows only for the first; a picked picture waits
as a thumbnail, shows on the question, reaches the model, and is still there after a reload."""

from __future__ import annotations

import io
import re

import pytest
from e2e_ui import SLOW_MS, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import expect
from tiny_model import build_tiny_model, build_tiny_vlm


@pytest.fixture(scope="module")
def eyes_and_text(launch_app, tmp_path_factory):
    vlm = build_tiny_vlm(tmp_path_factory.mktemp("vlm"))
    text = build_tiny_model(tmp_path_factory.mktemp("text"), with_template=True)
    return launch_app("--model", f"eyes={vlm},backend=transformers,device=cpu",
                      "--model", f"words={text},backend=transformers,device=cpu")


def choose(page, picker: str, value: str) -> None:
    page.locator(f"#{picker} input").click()
    page.locator(f"#{picker}").get_by_role("option").or_(page.locator("ul.options li")).filter(
        has_text=value).first.click()
    expect(page.locator(f"#{picker} input")).to_have_value(value)


def test_pick_a_picture_for_the_model_that_sees(eyes_and_text, new_page, tmp_path):
    from PIL import Image

    picture = tmp_path / "red-square.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (220, 30, 30)).save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    page = new_page("en-US")
    open_app(page, eyes_and_text.url)
    button = page.locator("#chat-attach-image")
    expect(button).to_be_visible()  # "eyes", the default, can see
    choose(page, "chat-model", "words")
    expect(button).to_be_hidden()  # the text-only model: no button
    choose(page, "chat-model", "eyes")
    expect(button).to_be_visible()
    set_slider(page, "Max new tokens", 16, accordion="Parameters")

    with page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files([str(picture)])
    waiting = page.locator("#chat-images-waiting")
    expect(waiting.locator("img.dcu-thumb")).to_have_count(1, timeout=SLOW_MS)

    send_chat(page, "what is this")
    question = page.locator("#chatbot [data-testid=user]").last
    expect(question.locator("img.dcu-thumb")).to_have_count(1)  # the thumbnail on the question
    expect(question.locator("img.dcu-thumb")).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    box = question.locator("img.dcu-thumb").bounding_box()
    assert box and box["width"] <= 161 and box["height"] <= 121, box  # a thumbnail, not the picture
    expect(waiting.locator("img")).to_have_count(0)  # sent: nothing waits any more
    wait_answer_done(page.locator("#chatbot [data-testid=bot]").last)
    shoot(page, "chat-images")

    page.reload()
    open_app(page, eyes_and_text.url)
    expect(page.locator("#chatbot [data-testid=user]").last.locator("img.dcu-thumb")).to_have_count(1,
                                                                                                 timeout=SLOW_MS)
