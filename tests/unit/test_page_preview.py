"""Previews of cited pages: a PDF page, a scanned page and an image drawn with the passage marked in
yellow (checked pixel by pixel), the cache, the text of a text file with the passage's offsets, and
the routes under real sign-in: another user's document answers 404.
"""

from __future__ import annotations

import io
import shutil

import pytest
from argon2 import PasswordHasher
from docs_support import REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient
from PIL import Image

from assist.users import UserStore
from bench.scans import image_bytes, scan_image, scanned_pdf
from rag import page_image
from rag.document_files import original_path
from rag.ocr import OcrOptions
from rag.page_image import passage_boxes, render_page
from webui.api import build_api

REPORT = make_pdf(REPORT_PAGES)
WARRANTY = "The warranty period for the X200 pump is 36 months from the date of delivery."
SCAN_PAGES = ["Harbour ferry handbook. The ferry Saint Brendan was launched in 1987 and carries 240 passengers.",
              "Safety. Life jackets for every passenger are stored in the orange lockers on the upper deck."]
NOTES = ("# Boiler room\n\nCheck the gauges every morning.\n\n## Pressure\n\n"
         "The boiler pressure must stay below 2.5 bar. Call the duty engineer above it.\n")
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract-ocr")
TOKENS: dict[str, str] = {}


def yellow(pixel) -> bool:
    r, g, b = pixel[:3]
    return r > 200 and g > 160 and b < 200 and r - b > 60


def yellow_share(image: Image.Image, box) -> float:
    left, top, right, bottom = (round(v) for v in box)
    pixels = [image.getpixel((x, y)) for x in range(left, right) for y in range(top, bottom)]
    return sum(map(yellow, pixels)) / max(1, len(pixels))


def ink_share(image: Image.Image, box) -> float:
    """Dark pixels in ``box``: a box over words holds their ink (checked on the page drawn unmarked)."""
    left, top, right, bottom = (round(v) for v in box)
    pixels = [image.getpixel((x, y)) for x in range(left, right) for y in range(top, bottom)]
    return sum(sum(p[:3]) < 300 for p in pixels) / max(1, len(pixels))


def yellow_rows(image: Image.Image) -> set[int]:
    """The rows of the image that hold any yellow pixel (a highlight's vertical extent)."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    data = rgb.load()
    return {y for y in range(height) if any(yellow(data[x, y]) for x in range(0, width, 2))}


def test_a_pdf_page_is_drawn_with_the_passage_marked_and_nothing_else():
    png = render_page(REPORT, "pdf", 2, WARRANTY)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width == page_image.WIDTH and image.height > image.width  # a portrait page
    plain = Image.open(io.BytesIO(render_page(REPORT, "pdf", 2))).convert("RGB")
    assert not yellow_rows(plain)  # nothing marked without a passage
    # The passage's words are found in the text layer: their boxes are mostly yellow now.
    words = page_image._pdf_page(REPORT, 2, page_image.WIDTH, True, None)[1]
    boxes = passage_boxes(words, WARRANTY)
    assert len(boxes) == 1 and all(yellow_share(image, box) > 0.5 and ink_share(plain, box) > 0.05 for box in boxes)
    # "Warranty terms." starts the same line but is not the passage: it stays white.
    heading = [box for word, box in words if word in ("Warranty", "terms.")]
    assert heading and all(yellow_share(image, box) == 0 for box in heading)
    assert yellow_rows(image) and max(yellow_rows(image)) < image.height // 5  # the top line only


def test_a_page_whose_crop_box_is_not_at_the_origin_is_marked_in_place():
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(REPORT)
    document[1].set_cropbox(20, 300, 590, 830)  # what a viewer shows starts 20 pt in and ends 12 pt lower
    out = io.BytesIO()
    document.save(out)
    document.close()
    data = out.getvalue()
    image = Image.open(io.BytesIO(render_page(data, "pdf", 2, WARRANTY))).convert("RGB")
    words = page_image._pdf_page(data, 2, page_image.WIDTH, True, None)[1]
    [box] = passage_boxes(words, WARRANTY)
    plain = Image.open(io.BytesIO(render_page(data, "pdf", 2))).convert("RGB")
    assert yellow_share(image, box) > 0.5 and ink_share(plain, box) > 0.05  # on the words, as drawn


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_turned_page_is_marked_where_the_passage_is_drawn(rotation):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(REPORT)))
    writer.pages[1].rotate(rotation)
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    image = Image.open(io.BytesIO(render_page(data, "pdf", 2, WARRANTY))).convert("RGB")
    assert (image.width > image.height) == (rotation in (90, 270))
    boxes = passage_boxes(page_image._pdf_page(data, 2, page_image.WIDTH, True, None)[1], WARRANTY)
    plain = Image.open(io.BytesIO(render_page(data, "pdf", 2))).convert("RGB")
    assert boxes and all(yellow_share(image, box) > 0.5 and ink_share(plain, box) > 0.05 for box in boxes)


def test_words_are_found_across_line_breaks_and_slips():
    words = [(w, (i * 10.0, 0.0, i * 10.0 + 8, 10.0)) for i, w in enumerate(
        "Intro text here . The warranty peri0d for the X200 pump is 36 months from delivery . Other".split())]
    boxes = passage_boxes(words, "The warranty period for the X200 pump is 36 months from delivery.")
    assert boxes == [(40.0, 0.0, 158.0, 10.0)]  # "The" … "delivery": one line, the OCR slip inside it
    assert passage_boxes(words, "Nothing like this is on the page at all") == []


@needs_tesseract
def test_a_scanned_page_is_marked_from_ocr_word_boxes(tmp_path):
    data = scanned_pdf(SCAN_PAGES)
    png = render_page(data, "pdf", 2, "Life jackets for every passenger are stored in the orange lockers",
                      OcrOptions("eng"))
    rows = yellow_rows(Image.open(io.BytesIO(png)))
    assert rows and max(rows) < 300  # the two lines of text near the top of the page
    assert not yellow_rows(Image.open(io.BytesIO(render_page(data, "pdf", 1, "orange lockers", OcrOptions("eng")))))


# ---------------------------------------------------------------- routes, with sign-in


@pytest.fixture()
def services(tmp_path):
    services = make_services(tmp_path / "data", FakeEngine("It is 36 months [1]."), ocr_langs="eng")
    services.users = UserStore(":memory:", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    for name in ("alice", "bob"):
        services.users.add(name, "long-enough-password")
        TOKENS[name] = services.users.create_token(name)[1]
    yield services
    services.store.close()


@pytest.fixture()
def client(services):
    with TestClient(build_api(services)) as client:
        yield client


def as_(user: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def upload(client, user: str, name: str, data: bytes, collection: str = "default") -> dict:
    response = client.post(f"/api/collections/{collection}/documents", headers=as_(user),
                           files=[("files", (name, data, "application/octet-stream"))])
    assert response.status_code == 200 and not response.json()["errors"], response.text
    return response.json()["documents"][0]


def hit(client, user: str, query: str, collection: str = "default") -> dict:
    hits = client.post(f"/api/collections/{collection}/search", headers=as_(user),
                       json={"query": query, "top_k": 1}).json()["hits"]
    return hits[0]


def test_the_cited_page_of_a_pdf_over_http_cached_and_private(client, services, monkeypatch):
    doc = upload(client, "alice", "report.pdf", REPORT)
    cited = hit(client, "alice", "warranty period of the X200 pump")
    assert cited["page"] == 2 and isinstance(cited["chunk_id"], int)
    url = f"/api/collections/default/documents/{doc['id']}/pages/2.png?chunk={cited['chunk_id']}"
    first = client.get(url, headers=as_("alice"))
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert "private" in first.headers["cache-control"]
    top, bottom = (float(v) for v in first.headers["x-passage-band"].split(","))
    assert 0 < top < bottom < 0.2  # where the marked line is, for the panel to scroll to
    rows = yellow_rows(Image.open(io.BytesIO(first.content)))
    assert rows and max(rows) < 300

    # A second look is read from the cache: nothing is drawn again.
    monkeypatch.setattr(page_image, "render_page", lambda *a, **k: pytest.fail("drawn again"))
    assert client.get(url, headers=as_("alice")).content == first.content
    monkeypatch.undo()
    plain = client.get(f"/api/collections/default/documents/{doc['id']}/pages/1.png", headers=as_("alice"))
    assert plain.status_code == 200 and not yellow_rows(Image.open(io.BytesIO(plain.content)))
    assert "x-passage-band" not in plain.headers

    # Bob has a default of his own: alice's document is not in it, and her collection is not his to see.
    for ref in ("default", "alice:default"):
        for path in (f"pages/2.png?chunk={cited['chunk_id']}", f"text?chunk={cited['chunk_id']}"):
            response = client.get(f"/api/collections/{ref}/documents/{doc['id']}/{path}", headers=as_("bob"))
            assert response.status_code == 404, (ref, path, response.text)
    assert client.get(url).status_code == 401  # no credentials at all

    # Pages the document does not have, and a passage of another page: 404 with a sentence.
    for bad in ("pages/4.png", "pages/0.png", f"pages/1.png?chunk={cited['chunk_id']}", "text?page=9"):
        response = client.get(f"/api/collections/default/documents/{doc['id']}/{bad}", headers=as_("alice"))
        assert response.status_code == 404 and response.json()["error"]["message"], bad

    # The page's text too, with the passage's offsets in it.
    body = client.get(f"/api/collections/default/documents/{doc['id']}/text?chunk={cited['chunk_id']}",
                      headers=as_("alice")).json()
    assert body["page"] == 2 and body["pages"] == 3 and body["format"] == "pdf"
    assert WARRANTY in body["text"]
    assert body["text"][body["passage"]["start"]:body["passage"]["end"]] in cited["text"]

    # Deleting the document deletes its original and its drawn pages.
    storage = services.collections.resolve("alice", "default").storage
    directory = services.store.root / storage
    assert original_path(directory, doc["id"]).is_file() and any((directory / "previews").rglob("*.png"))
    assert client.delete(f"/api/collections/default/documents/{doc['id']}", headers=as_("alice")).status_code == 200
    assert not original_path(directory, doc["id"]).exists() and not any((directory / "previews").rglob("*"))
    assert client.get(url, headers=as_("alice")).status_code == 404


def test_a_text_file_shows_the_passage_in_its_surroundings(client):
    doc = upload(client, "alice", "boiler.md", NOTES.encode())
    cited = hit(client, "alice", "maximum boiler pressure bar")
    assert cited["page"] is None
    body = client.get(f"/api/collections/default/documents/{doc['id']}/text?chunk={cited['chunk_id']}",
                      headers=as_("alice")).json()
    assert body["text"] == NOTES and body["page"] is None and body["pages"] is None
    marked = body["text"][body["passage"]["start"]:body["passage"]["end"]]
    assert "2.5 bar" in marked and "# Boiler room" not in marked  # the passage, its heading line around it
    # A text file has no page images: 404 that says so.
    response = client.get(f"/api/collections/default/documents/{doc['id']}/pages/1.png", headers=as_("alice"))
    assert response.status_code == 404 and "text file" in response.json()["error"]["message"]


@needs_tesseract
def test_a_scanned_pdf_and_an_image_over_http(client):
    scan = upload(client, "alice", "ferry.pdf", scanned_pdf(SCAN_PAGES))
    note = upload(client, "alice", "note.png", image_bytes(scan_image(
        "Boiler room note. The boiler pressure must stay below 2.5 bar; call the duty engineer above it.")))
    for doc, query, page in ((scan, "where are the life jackets stored orange lockers", 2),
                             (note, "boiler pressure must stay below", 1)):
        cited = hit(client, "alice", query)
        assert cited["document_id"] == doc["id"] and cited["page"] == page
        response = client.get(f"/api/collections/default/documents/{doc['id']}/pages/{page}.png"
                              f"?chunk={cited['chunk_id']}", headers=as_("alice"))
        assert response.status_code == 200, response.text
        image = Image.open(io.BytesIO(response.content))
        assert image.width <= page_image.WIDTH and yellow_rows(image), doc["name"]


def test_documents_indexed_before_previews_still_show_their_text(client, services):
    doc = upload(client, "alice", "report.pdf", REPORT)
    storage = services.collections.resolve("alice", "default").storage
    original_path(services.store.root / storage, doc["id"]).unlink()  # as if added by an older version
    response = client.get(f"/api/collections/default/documents/{doc['id']}/pages/2.png", headers=as_("alice"))
    assert response.status_code == 404 and "upload it again" in response.json()["error"]["message"]
    body = client.get(f"/api/collections/default/documents/{doc['id']}/text?page=2", headers=as_("alice")).json()
    assert WARRANTY in body["text"] and body["passage"] is None
    assert upload(client, "alice", "report.pdf", REPORT)["id"] == doc["id"]  # uploaded again, as the message says
    assert client.get(f"/api/collections/default/documents/{doc['id']}/pages/2.png", headers=as_("alice")).status_code == 200


def test_files_left_by_a_crash_are_removed_when_the_collection_is_opened(tmp_path):
    from rag.store import DocumentStore

    services = make_services(tmp_path / "data", FakeEngine())
    store = services.store
    doc = store.add_files("default", [("report.pdf", REPORT)]).documents[0]
    directory = store.root / "default"
    kept = original_path(directory, doc.id)
    orphan = original_path(directory, "0123456789abcdef")  # written, then the server died before "ready"
    orphan.write_bytes(b"%PDF-")
    (directory / "originals" / ".tmp-half").write_bytes(b"half a file")
    store.close()
    reopened = DocumentStore(services.rag_config, services.embedder)
    try:
        assert reopened.search("default", "warranty", min_score=0)  # opening the index reconciles the files
        assert kept.read_bytes() == REPORT
        assert sorted(p.name for p in (directory / "originals").iterdir()) == [doc.id]
    finally:
        reopened.close()


def test_a_collection_shared_read_only_shows_its_pages_to_the_reader(client):
    assert client.post("/api/collections", headers=as_("alice"), json={"name": "manuals"}).status_code == 201
    doc = upload(client, "alice", "report.pdf", REPORT, collection="manuals")
    cited = hit(client, "alice", "warranty period of the X200 pump", collection="manuals")
    url = f"/api/collections/alice:manuals/documents/{doc['id']}/pages/2.png?chunk={cited['chunk_id']}"
    assert client.get(url, headers=as_("bob")).status_code == 404  # not shared yet
    assert client.put("/api/collections/manuals/sharing", headers=as_("alice"),
                      json={"users": ["bob"], "mode": "read"}).status_code == 200
    shown = client.get(url, headers=as_("bob"))
    assert shown.status_code == 200 and yellow_rows(Image.open(io.BytesIO(shown.content)))
    text = client.get(f"/api/collections/alice:manuals/documents/{doc['id']}/text?page=2", headers=as_("bob"))
    assert text.status_code == 200 and WARRANTY in text.json()["text"]


# ---------------------------------------------------------------- files in Chat messages

FILLER = " ".join(f"Filler sentence number {i} about nothing in particular." for i in range(40))
PLANT = [f"Chapter 1. {FILLER}", f"Chapter 2. {FILLER} The emergency generator of the Delta plant runs on "
         "biodiesel from tank B7. The tank is refilled every Friday.", f"Chapter 3. {FILLER}"]


def test_a_file_cited_in_chat_shows_its_page_text_to_its_owner_only(tmp_path):
    from assist.attachments import read_attachments
    from assist.sessions import SessionStore
    from engine.config import SamplingParams

    services = make_services(tmp_path / "data", FakeEngine())
    services.sessions = SessionStore(tmp_path / "data" / "sessions.sqlite3")
    services.users = UserStore(":memory:", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    for name in ("alice", "bob"):
        services.users.add(name, "long-enough-password")
        TOKENS[name] = services.users.create_token(name)[1]
    [plant], _ = read_attachments([("plant.pdf", make_pdf(PLANT))])
    question = {"role": "user", "content": "What fuel does the emergency generator of the Delta plant use?",
                "attachments": [plant]}
    session = services.sessions.create("alice", messages=[question])
    # Too long to be read whole: the answer reads passages from the conversation's own index.
    attached = services.attachments.prepare(FakeEngine(), session.messages, SamplingParams(), session.id, budget=200)
    assert attached.mode == "passages" and attached.conversation == session.id
    cited = next(h for h in attached.sources if "biodiesel" in h.text)
    from webui.docs_format import file_preview_url

    url = file_preview_url(session.id, cited, passage=True)
    assert url == f"/api/sessions/{session.id}/files/{plant['id']}/text?page=2&chunk={cited.chunk_id}"
    with TestClient(build_api(services)) as client:
        body = client.get(url, headers=as_("alice")).json()
        assert body["name"] == "plant.pdf" and body["page"] == 2 and body["pages"] == 3
        assert body["text"] == plant["text"].split("\f")[1]  # the page as read when it was attached
        marked = body["text"][body["passage"]["start"]:body["passage"]["end"]]
        assert "biodiesel from tank B7" in marked and "Chapter 2" in body["text"]
        whole = client.get(file_preview_url(session.id, cited, passage=False), headers=as_("alice")).json()
        assert whole["text"] == body["text"] and whole["passage"] is None  # a page read whole: no mark
        assert client.get(url, headers=as_("bob")).status_code == 404  # alice's conversation
        assert client.get(url.replace(plant["id"], "0" * 16), headers=as_("alice")).status_code == 404
        assert client.get(url.replace("page=2", "page=7"), headers=as_("alice")).status_code == 404
    services.sessions.close()
    services.store.close()
