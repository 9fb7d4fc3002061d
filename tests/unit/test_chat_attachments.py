"""Files in a Chat message, through the real parsers: chips, the prompt (whole or retrieved), citations
by file and page, saved with the conversation (reload, regenerate, export), the index deleted with it."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from types import SimpleNamespace

import pytest
from docs_support import REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine

from assist.attachments import AttachmentLimits, ChatAttachments, collection_name, read_attachments
from assist.sessions import LOCAL_OWNER, SessionStore
from engine.config import SamplingParams
from webui.adapters import display_history
from webui.chat_branches import edited_text
from webui.chat_files import ChatFiles
from webui.chat_sessions import ChatSessions
from webui.chat_tab import ChatHandlers
from webui.services import Services


def request(session: str = "tab1"):
    return SimpleNamespace(session_hash=session, username=None, headers={"accept-language": "en-US"})


def last(generator):
    *_, final = generator
    return final


def shown(markdown: str) -> str:
    """Markdown as read on the screen: file names are escaped in it (``report\\.pdf``), citations are
    links to the cited page (``[&#91;2&#93; report\\.pdf p\\.2](/api/sessions/… "…")``)."""
    markdown = re.sub(r'\[([^\]]*)\]\(/api/sessions/[^ )]+ "[^"]*"\)', r"\1", markdown)
    return re.sub(r"\\(.)", r"\1", markdown.replace("&#91;", "[").replace("&#93;", "]"))


def docx_bytes(*paragraphs: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Handbook", level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


FILES = [
    ("report.pdf", make_pdf(REPORT_PAGES)),
    ("handbook.docx", docx_bytes("Badges are collected at the front desk on the first day.")),
    ("notes.txt", b"The meeting room on floor 3 is called Orca."),
    ("guide.md", b"# Setup\n\nRun `make setup` once.\n"),
    ("page.html", b"<html><body><h2>Parking</h2><p>Parking is free after 18:00.</p><script>x()</script></body></html>"),
    ("tool.py", b"def add(a, b):\n    return a + b\n"),
]


def test_every_kind_of_file_is_read_by_the_real_parsers():
    attachments, errors = read_attachments(FILES, ocr=None)
    assert errors == []
    by_name = {a["name"]: a for a in attachments}
    assert list(by_name) == [name for name, _ in FILES]
    report = by_name["report.pdf"]
    assert report["format"] == "pdf" and report["pages"] == 3
    assert report["text"].split("\f")[1].startswith("Warranty terms.")  # pages kept apart
    assert "front desk" in by_name["handbook.docx"]["text"] and by_name["handbook.docx"]["pages"] is None
    assert "Parking is free" in by_name["page.html"]["text"] and "x()" not in by_name["page.html"]["text"]
    assert by_name["tool.py"]["format"] == "code" and "return a + b" in by_name["tool.py"]["text"]
    assert all(isinstance(v, str | int | type(None)) for a in attachments for v in a.values())  # storable


def test_a_bad_file_says_why_and_the_others_stay():
    files = [("broken.pdf", b"%PDF-1.4 this is not really a pdf"), ("report.pdf", make_pdf(REPORT_PAGES)),
             ("secret.pdf", make_pdf(["Hidden."], password="pw")), ("archive.zip", b"PK\x03\x04zip")]
    attachments, errors = read_attachments(files, ocr=None)
    assert [a["name"] for a in attachments] == ["report.pdf"]
    broken, secret, archive = errors
    assert broken.startswith("broken.pdf") and "damaged" in broken
    assert secret.startswith("secret.pdf") and "encrypted" in secret
    assert archive.startswith("archive.zip") and "not supported" in archive
    _, [big] = read_attachments([("big.txt", b"word " * 400)], AttachmentLimits(max_file_bytes=1000), ocr=None)
    assert big.startswith("big.txt") and "limit" in big


def test_too_many_files_and_too_much_text_are_refused_with_the_limit():
    attachments, errors = read_attachments(FILES[2:5], AttachmentLimits(max_files=2), ocr=None, already=1)
    assert [a["name"] for a in attachments] == ["notes.txt"]
    assert len(errors) == 2 and "at most 2 files" in errors[0]
    _, errors = read_attachments([("long.txt", b"many words here " * 100)], AttachmentLimits(max_chars=500), ocr=None)
    assert "500" in errors[0] and "Document Q&A" in errors[0]


def chat_with_files(reply: str, sessions=None, engine=None, attachments=None):
    engine = engine or FakeEngine(reply)
    files = ChatFiles(attachments or ChatAttachments(ocr=None))
    return ChatHandlers(engine, sessions=sessions, files=files), engine, files


def attach(files: ChatFiles, *named, session="tab1"):
    read, errors = files.attachments.read(list(named))
    assert not errors
    files.put(request(session), files.waiting(request(session)) + read)


def test_a_small_pdf_goes_in_whole_page_by_page_and_the_answer_names_file_and_page():
    handlers, engine, files = chat_with_files("The warranty period is 36 months from the date of delivery.")
    attach(files, FILES[0])
    display, history, _ = last(handlers.respond("How long is the warranty of the X200 pump?", temperature=0,
                                                history=[], request=request()))
    assert history[0]["attachments"][0]["name"] == "report.pdf" and files.waiting(request()) == []
    sent = engine.calls[-1]["messages"][-1]["content"]
    assert "[1] report.pdf p.1: Quarterly report" in sent and "[2] report.pdf p.2: Warranty terms." in sent
    assert sent.rstrip().endswith("How long is the warranty of the X200 pump?")
    answer = history[-1]
    assert answer["content"].endswith("[2]")  # it quoted page 2 without citing it: the number is added
    assert shown(answer["stats"]).startswith("[2] report.pdf p.2 · ")
    assert "report.pdf" in display[0]["content"] and "dcu-file" in display[0]["content"]  # the chip
    assert "[2] report.pdf p.2" in shown(display[-1]["content"])


def test_files_are_saved_with_the_question_and_read_again_after_a_reload_and_a_regenerate(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    sessions = ChatSessions(store, tmp_path / "exports")
    handlers, engine, files = chat_with_files("Replace the intake filter every six months.", sessions)
    attach(files, FILES[0], FILES[2])
    last(handlers.respond("How often is the filter replaced?", history=[], request=request()))
    [saved] = store.list(LOCAL_OWNER)
    question = store.get(saved.id, LOCAL_OWNER).messages[0]
    assert [a["name"] for a in question["attachments"]] == ["report.pdf", "notes.txt"]
    assert "Orca" in question["attachments"][1]["text"]

    reopened = ChatSessions(store, tmp_path / "exports")  # a reload (or a restart) in another tab
    view = reopened.open(saved.id, request=request("tab2"))
    handlers2, engine2, _ = chat_with_files("It is called Orca.", reopened)
    _, history, _ = last(handlers2.respond("What is the meeting room called?", history=view.history,
                                           request=request("tab2")))
    first = questions(engine2)[0]  # the files stay with the question they came with
    assert "[3] report.pdf p.3: Maintenance schedule." in first and "[4] notes.txt: The meeting room" in first
    assert shown(history[-1]["stats"]).startswith("[4] notes.txt · ")

    last(handlers2.regenerate("", 0, 1, 0, 64, 1.0, -1, history, request=request("tab2")))
    assert "[4] notes.txt: The meeting room" in questions(engine2)[0]
    assert "_Attached: report.pdf (3 pages), notes.txt_" in store.export(saved.id, LOCAL_OWNER, "md")[1]
    exported = json.loads(store.export(saved.id, LOCAL_OWNER, "json")[1])
    imported = store.import_json(LOCAL_OWNER, exported)
    assert imported.messages[0]["attachments"][0]["text"] == question["attachments"][0]["text"]
    store.close()


def questions(engine) -> list[str]:
    return [m["content"] for m in engine.calls[-1]["messages"] if m["role"] == "user"]


def test_the_chips_are_not_part_of_an_edited_question():
    history = [{"id": "q1", "role": "user", "content": "Summarize <this>", "attachments": [
        {"id": "a", "name": "report.pdf", "format": "pdf", "pages": 3, "text": "x"}]}]
    shown = display_history(history)[0]["content"]
    assert "3 p." in shown
    assert edited_text(shown) == "Summarize <this>"


def test_picked_files_wait_as_chips_and_a_bad_one_is_left_out(tmp_path):
    files = ChatFiles(ChatAttachments(ocr=None))
    good, bad = tmp_path / "notes.txt", tmp_path / "broken.pdf"
    good.write_bytes(FILES[2][1])
    bad.write_bytes(b"%PDF-1.4 cut short")
    with pytest.warns(UserWarning, match="broken.pdf"):  # shown as a warning toast in the page
        chips, button = files.add([str(bad), str(good)], request())
    assert "notes.txt" in chips and "broken.pdf" not in chips and button["visible"] is True
    assert [a["name"] for a in files.waiting(request())] == ["notes.txt"]
    assert files.waiting(request("other-tab")) == []  # per browser tab
    assert files.clear(request())[0] == "" and files.waiting(request()) == []


def test_edit_last_puts_the_files_back_to_go_with_the_edited_text():
    handlers, _, files = chat_with_files("ok")
    attach(files, FILES[2])
    _, history, _ = last(handlers.respond("What is in the notes?", history=[], request=request()))
    handlers.edit_last(history, request=request())
    assert [a["name"] for a in files.waiting(request())] == ["notes.txt"]
    assert "notes.txt" in files.chips(request())


LONG_PAGES = [f"Chapter {n}. " + " ".join(f"Filler sentence number {i} about nothing in particular." for i in range(40))
              for n in range(1, 4)]
LONG_PAGES[1] += " The emergency generator of the Delta plant runs on biodiesel from tank B7."


def test_files_too_large_for_the_budget_are_searched_in_a_per_conversation_index(tmp_path):
    base = make_services(tmp_path / "data", FakeEngine())
    store = SessionStore(tmp_path / "sessions.sqlite3")
    services = Services(engine=base.engine, web=base.web, store=base.store, embedder=base.embedder,
                        rag_config=base.rag_config, sessions=store)
    sessions = ChatSessions(store, tmp_path / "exports")
    engine = FakeEngine("The generator runs on biodiesel from tank B7.")
    engine.info = dataclasses.replace(engine.info, context_length=600)  # the files do not fit whole
    handlers, engine, files = chat_with_files("", sessions, engine, services.attachments)
    attach(files, ("plant.pdf", make_pdf(LONG_PAGES)))
    question = "What fuel does the emergency generator of the Delta plant use?"
    _, history, _ = last(handlers.respond(question, history=[], max_new_tokens=128, request=request()))
    sent = engine.calls[-1]["messages"][-1]["content"]
    assert "biodiesel from tank B7" in sent and "plant.pdf p.2" in sent
    assert len(sent.split()) < 500  # passages, not the whole file (~1000 words)
    assert re.match(r"\[\d\] plant\.pdf p\.2 · ", shown(history[-1]["stats"])), history[-1]["stats"]
    # The citation links to that page's text, the passage marked (webui.preview_api, tests/unit/test_page_preview.py)
    assert re.match(rf"\[&#91;\d&#93; plant\\\.pdf p\\\.2\]\(/api/sessions/{sessions.current(request())}/files/\w+/text"
                    r"\?page=2&chunk=\d+ ", history[-1]["stats"]), history[-1]["stats"]
    conversation = sessions.current(request())
    index = services.attachments.index
    assert collection_name(conversation) in index.list_collections()
    store.delete(conversation, LOCAL_OWNER)  # the conversation goes, and its index with it
    assert collection_name(conversation) not in index.list_collections()
    store.close()


def test_without_a_document_store_large_files_are_cut_to_the_passages_that_answer():
    attachments = ChatAttachments(ocr=None)
    [plant], _ = attachments.read([("plant.pdf", make_pdf(LONG_PAGES))])
    history = [{"role": "user", "content": "What fuel does the emergency generator use?", "attachments": [plant]}]
    prepared = attachments.prepare(FakeEngine(), history, SamplingParams(max_new_tokens=64), "tab", budget=300)
    assert prepared.mode == "passages" and "biodiesel" in prepared.history[-1]["content"]
    assert len(prepared.history[-1]["content"].split()) <= 300
    assert history[0]["content"] == "What fuel does the emergency generator use?"  # never changed in place


@pytest.mark.parametrize("answer, checked, cited", [
    ("It was founded in 1902 [1].", "It was founded in 1902 [1].", [1]),  # right: kept
    ("The warranty period is 36 months [1].", "The warranty period is 36 months [2].", [2]),  # moved to the page
    ("Founded in 1902 [1]; the warranty is 36 months [2].", None, [1, 2]),  # both right
    ("Replace the intake filter every six months", "Replace the intake filter every six months [3]", [3]),
    ("I do not know.", "I do not know.", []),
])
def test_cite_checks_the_numbers_against_what_the_answer_quotes(answer, checked, cited):
    attachments = ChatAttachments(ocr=None)
    [report], _ = attachments.read([("report.pdf", make_pdf([
        "Harbor Pump Company. The company was founded in 1902.", *REPORT_PAGES[1:]]))])
    question = "What does the report say?"
    prepared = attachments.prepare(FakeEngine(), [{"role": "user", "content": question, "attachments": [report]}],
                                   SamplingParams(), "tab")
    said, found = ChatAttachments.cite(answer, prepared, question)
    assert said == (checked or answer) and [n for n, _ in found] == cited
    assert all(hit.page == n for n, hit in found)


def test_a_long_conversation_still_leaves_room_for_the_passages():
    attachments = ChatAttachments(ocr=None)
    [plant], _ = attachments.read([("plant.pdf", make_pdf(LONG_PAGES))])
    chatter = [{"role": r, "content": "word " * 150} for r in ("user", "assistant") * 2]
    history = [{"role": "user", "content": "Read this.", "attachments": [plant]}, {"role": "assistant", "content": "ok"},
               *chatter, {"role": "user", "content": "What fuel does the emergency generator use?"}]
    prepared = attachments.prepare(FakeEngine(), history, SamplingParams(), "tab", budget=600)
    assert prepared.mode == "passages" and "biodiesel" in prepared.history[-1]["content"]
    assert prepared.history[0]["content"].startswith("Attached: plant.pdf")  # named where it was attached
