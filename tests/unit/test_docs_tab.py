"""Docs tab handlers with a fake engine and a real store: uploads, table, delete, collections, ask."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from types import SimpleNamespace

import gradio as gr
import pytest
from docs_support import MANUAL_PAGES, REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine

from rag.prompts import NOT_FOUND_MESSAGE
from webui.docs_tab import DocsHandlers


def request(session: str = "s1", lang: str = "en-US"):
    return SimpleNamespace(session_hash=session, headers={"accept-language": lang})


def last(generator):
    tail = deque(generator, maxlen=1)
    return tail[0] if tail else None


@pytest.fixture()
def services(tmp_path):
    services = make_services(tmp_path / "data", FakeEngine("The warranty lasts 36 months [1]."))
    yield services
    services.store.close()


@pytest.fixture()
def handlers(services):
    return DocsHandlers(services)


@pytest.fixture()
def files(tmp_path):
    folder = tmp_path / "upload"
    folder.mkdir()
    contents = {"report.pdf": make_pdf(REPORT_PAGES), "manual.pdf": make_pdf(MANUAL_PAGES),
                "broken.pdf": b"%PDF-1.4 this is not really a pdf", "empty.txt": b"",
                "notes.md": b"# Notes\n\nThe cafeteria opens at 8 am."}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: str(folder / name) for name in contents}


def upload(handlers, paths, collection="default", lang="en-US"):
    """Upload through the handler, then poll like the page's timer until every job has ended.
    -> ((report, cleared, table, empty, picker, ids), reports seen while polling)."""
    req = request(lang=lang)
    report, cleared, watched, timer = handlers.upload(paths, collection, None, req)
    assert timer["active"] is True
    seen = [report]
    deadline = time.monotonic() + 60
    while timer["active"]:
        assert time.monotonic() < deadline, report
        time.sleep(0.02)
        report, watched, timer, *_listing = handlers.poll(collection, watched, req)
        seen.append(report)
    return (report, cleared, *handlers.documents(collection, req)), seen


def test_upload_reports_each_file_and_refreshes_the_table(handlers, files):
    (report, cleared, table, empty, picker, ids), seen = upload(handlers, list(files.values()))
    assert "3 added · 0 already present · 2 failed" in report
    assert "✓ <b>report.pdf</b> — added · 3 page(s)" in report
    assert "✓ <b>notes.md</b> — added · 1 chunk(s)" in report
    assert "✗ <b>broken.pdf</b> — broken.pdf could not be read as a PDF" in report
    assert "✗ <b>empty.txt</b> — empty.txt is empty" in report
    assert cleared is None
    assert "<progress" in seen[0] and "being indexed" in seen[0]  # a bar per file while they run
    assert seen[0].count('class="docs-job"') == 5
    assert table["headers"] == ["Name", "Pages", "Chunks", "Added"]
    assert sorted(row[0] for row in table["data"]) == ["manual.pdf", "notes.md", "report.pdf"]
    assert {row[0]: row[1] for row in table["data"]} == {"report.pdf": "3", "manual.pdf": "2", "notes.md": "—"}
    assert all(row[3].endswith("UTC") for row in table["data"])
    assert empty["visible"] is False and len(ids) == 3
    assert sorted(label for label, _ in picker["choices"]) == ["manual.pdf", "notes.md", "report.pdf"]


def test_file_names_in_the_report_are_escaped(handlers, tmp_path):
    path = tmp_path / "<img src=x onerror=alert(1)>.md"
    path.write_bytes(b"# Notes\n\nThe cafeteria opens at 8 am.")
    (report, *_rest), _ = upload(handlers, [str(path)])
    assert "<img" not in report and "&lt;img src=x onerror=alert(1)&gt;.md" in report


def test_running_jobs_are_shown_again_after_a_reload(handlers, services, files):
    gate = threading.Event()
    real = services.store.add_files
    services.store.add_files = lambda *a, **k: (gate.wait(30), real(*a, **k))[1]
    try:
        handlers.upload([files["report.pdf"]], "default", None, request())
        report, watched, timer = handlers.resume(None, request("another-tab"))  # a fresh page, same user
        assert timer["active"] is True and len(watched["ids"]) == 1
        assert "report.pdf" in report and "<progress" in report
    finally:
        gate.set()
    deadline = time.monotonic() + 30
    while timer["active"] and time.monotonic() < deadline:
        time.sleep(0.02)
        report, watched, timer, *listing = handlers.poll("default", watched, request("another-tab"))
    assert "✓ <b>report.pdf</b>" in report and listing[0]["data"][0][0] == "report.pdf"


def test_stop_indexing_cancels_this_page_s_uploads_and_adds_nothing(handlers, services, files):
    gate = threading.Event()
    real = services.store.add_files
    services.store.add_files = lambda *a, **k: (gate.wait(30), real(*a, **k))[1]  # held until after the cancel
    try:
        _, _, watched, _ = handlers.upload([files["report.pdf"], files["manual.pdf"]], "default", None, request())
        assert handlers.uploads_running(watched)["visible"] is True
        report, watched, timer = handlers.cancel_uploads(watched, request())
    finally:
        gate.set()
    deadline = time.monotonic() + 30
    while timer["active"] and time.monotonic() < deadline:
        time.sleep(0.02)
        report, watched, timer, *listing = handlers.poll("default", watched, request())
    assert report.count("Cancelled: nothing from this upload was added.") == 2, report
    assert handlers.uploads_running(watched)["visible"] is False
    assert services.store.list_documents("default") == []


def test_uploading_the_same_file_again_is_reported_as_a_duplicate(handlers, files):
    upload(handlers, [files["report.pdf"]])
    (report, *_rest), _ = upload(handlers, [files["report.pdf"], files["manual.pdf"]])
    assert "1 added · 1 already present · 0 failed" in report
    assert "↩ <b>report.pdf</b> — already in this collection" in report


def test_upload_messages_follow_the_browser_language(handlers, files):
    (report, _, table, *_rest), _ = upload(handlers, [files["report.pdf"]], lang="zh-CN")
    assert "新增 1 个" in report and table["headers"][0] == "名称"


def test_upload_without_files_or_to_a_missing_collection_is_a_readable_error(handlers, files):
    with pytest.raises(gr.Error, match="Choose one or more files"):
        upload(handlers, [])
    with pytest.raises(gr.Error, match="no collection named"):
        upload(handlers, [files["report.pdf"]], collection="nope")


def test_empty_collection_shows_the_empty_state(handlers):
    table, empty, picker, ids = handlers.documents("default", request())
    assert table["data"] == [] and empty["visible"] is True and ids == [] and picker["choices"] == []


def test_select_a_row_then_delete_it(handlers, files):
    (_, _, table, _, _, ids), _ = upload(handlers, [files["report.pdf"], files["manual.pdf"]])
    row = [r[0] for r in table["data"]].index("manual.pdf")
    picked = handlers.pick_row(ids, SimpleNamespace(index=[row, 0]))
    status, table, empty, picker, ids = handlers.delete_document("default", picked, request())
    assert status == "Deleted **manual.pdf**."
    assert [r[0] for r in table["data"]] == ["report.pdf"] and picked not in ids
    with pytest.raises(gr.Error, match="Pick a document"):
        handlers.delete_document("default", None, request())
    with pytest.raises(gr.Error, match="no document"):
        handlers.delete_document("default", picked, request())


def test_create_select_and_delete_a_collection_with_confirmation(handlers, services, files):
    selector, status, box = handlers.create_collection("manuals", request())
    assert selector["value"] == "manuals" and "manuals" in selector["choices"] and box == ""
    assert "Created collection **manuals**" in status
    with pytest.raises(gr.Error, match="not a valid collection name"):
        handlers.create_collection("bad name!", request())
    with pytest.raises(gr.Error, match="already exists"):
        handlers.create_collection("manuals", request())
    upload(handlers, [files["manual.pdf"]], collection="manuals")
    group, message = handlers.ask_delete_collection("manuals", request())
    assert group["visible"] is True and "**manuals** and its 1 document(s)" in message
    assert handlers.cancel_delete()["visible"] is False
    assert "manuals" in services.store.list_collections()  # nothing happens before the confirmation
    selector, group, status = handlers.delete_collection("manuals", request())
    assert selector["value"] == "default" and "manuals" not in selector["choices"] and group["visible"] is False
    assert services.store.list_collections() == ["default"]
    with pytest.raises(gr.Error, match="default collection cannot be deleted"):
        handlers.ask_delete_collection("default", request())


def test_collections_keeps_the_selection_when_it_still_exists(handlers, services):
    services.store.create_collection("zeta")
    assert handlers.collections("zeta")["value"] == "zeta"
    assert handlers.collections("gone")["value"] == "default"


def test_ask_streams_the_answer_with_numbered_sources(handlers, services, files):
    upload(handlers, [files["report.pdf"], files["manual.pdf"]])
    updates = list(handlers.ask("What is the warranty period of the X200 pump?", "default", 3, True, 128,
                                [], None, request()))
    assert len(updates) >= 4
    chat, sources, history, box = updates[0]
    assert sources == "Searching the collection…" and chat[-1]["content"] == "…" and box == ""
    chat, sources, history, box = updates[-1]
    # Each source links to its page, the passage marked (webui.preview_api); "[1]" as entities in the link
    assert re.match(r'\[\*\*&#91;1&#93; report\\\.pdf p\\\.2\*\*\]\(/api/collections/default/documents/\w+/pages/2\.png'
                    r'\?chunk=\d+ "Show the cited page"\) · score ', sources), sources
    assert "> Warranty terms\\. The warranty period for the X200 pump is 36 months" in sources
    assert history[-1]["content"] == "The warranty lasts 36 months [1]."
    assert chat[-1]["content"].startswith("The warranty lasts 36 months [1].\n\n<sub>[&#91;1&#93; report\\.pdf p\\.2](/api/")
    assert "TTFT" in chat[-1]["content"] and [m["role"] for m in history] == ["user", "assistant"]
    assert "pending" not in history[-1]
    assert services.engine.calls[0]["params"].max_new_tokens == 128
    # a follow-up question carries the earlier turn as history
    last(handlers.ask("And the filter?", "default", 3, True, 128, history, None, request()))
    sent = services.engine.calls[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert all(set(m) == {"role", "content"} for m in sent)


def test_the_sources_panel_is_filled_before_the_model_is_asked(handlers, services, files):
    upload(handlers, [files["report.pdf"]])
    shown_before_the_model = None
    for _chat, sources, _history, _box in handlers.ask("What is the warranty period of the X200 pump?", "default",
                                                       3, True, 128, [], None, request()):
        if sources.startswith("[**&#91;1&#93; report\\.pdf p\\.2**]") and shown_before_the_model is None:
            shown_before_the_model = services.engine.calls == []  # no queue, tokenizing or prefill yet
    assert shown_before_the_model is True and len(services.engine.calls) == 1


def test_ask_without_relevant_passages_says_not_found_without_the_model(handlers, services, files):
    upload(handlers, [files["report.pdf"]])
    chat, sources, history, _ = last(handlers.ask("How tall is Mount Everest?", "default", 5, True, 128, [],
                                                 None, request()))
    assert history[-1]["content"] == NOT_FOUND_MESSAGE["en"]
    assert sources == "No passage in this collection is relevant enough to this question."
    assert services.engine.calls == []
    chat, *_ = last(handlers.ask("珠穆朗玛峰有多高？", "default", 5, True, 128, [], None, request(lang="zh-CN")))
    assert chat[-1]["content"] == NOT_FOUND_MESSAGE["zh"]


def test_ask_refuses_empty_questions_and_empty_collections(handlers):
    with pytest.raises(gr.Error, match="Type a question"):
        last(handlers.ask("  ", "default", 5, True, 128, [], None, request()))
    with pytest.raises(gr.Error, match="no documents yet"):
        last(handlers.ask("warranty?", "default", 5, True, 128, [], None, request()))
    with pytest.raises(gr.Error, match="no collection named"):
        last(handlers.ask("warranty?", "nope", 5, True, 128, [], None, request()))


def test_stop_ends_the_answer_and_keeps_the_partial_text(handlers, services, files):
    upload(handlers, [files["report.pdf"]])
    services.engine.reply = " ".join(["word"] * 300)
    services.engine.delay = 0.01
    results = {}
    thread = threading.Thread(target=lambda: results.setdefault(
        "final", last(handlers.ask("warranty period of the X200 pump", "default", 3, True, 512, [],
                                   None, request("s9")))))
    thread.start()
    time.sleep(0.3)
    handlers.stop(request("s9"))
    thread.join(timeout=5)
    assert not thread.is_alive()
    chat, _, history, _ = results["final"]
    assert 0 < len(history[-1]["content"].split()) < 300
    assert "stopped" in chat[-1]["content"]


def test_clear_resets_the_conversation(handlers):
    chat, sources, history, box = handlers.clear()
    assert chat == [] and history == [] and box == "" and "appear here" in sources


def test_the_tab_builds_and_exposes_the_ask_endpoint(services):
    from webui.app import build_app

    blocks = build_app(services)
    info = blocks.get_api_info()["named_endpoints"]
    assert "/ask" in info
    params = info["/ask"]["parameters"]
    assert params[0]["parameter_name"] == "question"
    assert [p["parameter_name"] for p in params[1:4]] == ["collection", "top_k", "strict"]
    assert all(p["parameter_has_default"] for p in params[1:])
    assert params[1]["parameter_default"] == "default"
