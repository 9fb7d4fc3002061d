"""OCR of scanned PDFs and images: real Tesseract on pages rendered here (English and Chinese).

The scans are text drawn with pillow into 300 DPI images (``bench.scans``), put into PDF pages
with no text layer. Documents are found by search on the right page; in a mixed PDF only the
image pages are OCR'd; a server without Tesseract says how to install it (fault injection: an
empty PATH).
"""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from bench.scans import cjk_font, image_bytes, mixed_pdf, scan_image, scanned_pdf
from rag import errors, ocr
from rag.config import RagConfig
from rag.embedding import HashingEmbedder
from rag.parsing import parse_document
from rag.store import DocumentStore

EN_1 = "Bellrock lighthouse manual. The lamp burns colza oil stored in twelve copper tanks."
ZH_2 = "灯塔游客须知。游客参观时间是每周六上午九点到下午五点，门票为二十元。"
EN_3 = "Visitors. Guided tours of the lighthouse run every Saturday from May to September."
KETTLE = "Descaling. Descale the Model K kettle with citric acid once a month in hard water areas."


def _langs() -> set[str]:
    if shutil.which("tesseract") is None:
        return set()
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines()[1:]}


LANGS = _langs()
needs_tesseract = pytest.mark.skipif(not {"eng", "chi_sim"} <= LANGS or cjk_font() is None,
                                     reason="OCR tests need tesseract-ocr with eng and chi_sim data and "
                                            "fonts-wqy-microhei (make setup test-deps)")


@pytest.fixture()
def store(tmp_path):
    store = DocumentStore(RagConfig(data_dir=tmp_path / "data"), HashingEmbedder())
    yield store
    store.close()


def top(store, query: str):
    hits = store.search("default", query, top_k=1, min_score=0)
    assert hits, query
    return hits[0].source, hits[0].page


@pytest.fixture()
def count_ocr(monkeypatch):
    """How many images went through Tesseract (the real call still happens)."""
    calls = []
    real = ocr._ocr_image

    def counted(executable, image, options, where):
        calls.append(where)
        return real(executable, image, options, where)

    monkeypatch.setattr(ocr, "_ocr_image", counted)
    return calls


@needs_tesseract
def test_scanned_pdf_and_png_are_found_by_search_on_the_right_page(store):
    steps = []
    result = store.add_files("default", [("scan.pdf", scanned_pdf([EN_1, ZH_2, EN_3], cjk_font())),
                                         ("kettle.png", image_bytes(scan_image(KETTLE)))],
                             progress=lambda f, m: steps.append((f, m)))
    assert not result.errors, result.errors
    assert [(d.name, d.pages) for d in result.documents] == [("scan.pdf", 3), ("kettle.png", 1)]
    assert top(store, "What oil does the lamp burn?") == ("scan.pdf", 1)
    assert top(store, "游客参观时间是什么时候？") == ("scan.pdf", 2)
    assert top(store, "When do guided tours run?") == ("scan.pdf", 3)
    assert top(store, "How do I descale the kettle?") == ("kettle.png", 1)
    chinese = store.search("default", "门票", top_k=1, min_score=0)[0].text
    assert "门票为二十元" in chinese  # Tesseract's spaces between Chinese characters are gone
    fractions = [f for f, _ in steps]
    assert all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:], strict=False)) and fractions[-1] == 1.0
    assert any("OCR of scan.pdf: page 2" in m for _, m in steps)


@needs_tesseract
def test_only_pages_without_text_are_ocrd_in_a_mixed_pdf(count_ocr):
    data = mixed_pdf([("text", EN_1), ("scan", KETTLE), ("text", EN_3), ("text", "")])
    doc = parse_document(data, "mixed.pdf")
    assert doc.ocr_pages == (2,) and count_ocr == ["mixed.pdf page 2"]  # the blank page 4 is not OCR'd
    assert [p.number for p in doc.pages] == [1, 2, 3, 4]
    assert "colza oil" in doc.pages[0].text and "citric acid" in doc.pages[1].text
    assert "Saturday" in doc.pages[2].text and doc.pages[3].text == ""


@needs_tesseract
def test_multi_page_tiff_keeps_page_numbers():
    frames = [scan_image(EN_1), scan_image(KETTLE)]
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    doc = parse_document(out.getvalue(), "Scan 2024.TIFF")
    assert doc.format == "image" and doc.page_count == 2
    assert "colza" in doc.pages[0].text and "kettle" in doc.pages[1].text


@needs_tesseract
def test_jpeg_and_a_blank_image():
    doc = parse_document(image_bytes(scan_image(KETTLE).convert("RGB"), "JPEG"), "photo.jpg")
    assert "citric acid" in doc.pages[0].text
    with pytest.raises(errors.NoTextLayer, match="OCR found no text"):
        parse_document(image_bytes(scan_image("", noise=False)), "blank.png")


def test_damaged_and_oversized_images_are_refused():
    with pytest.raises(errors.CorruptFile, match="broken.png could not be read as an image"):
        parse_document(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "broken.png")
    from PIL import Image

    huge = image_bytes(Image.new("1", (9000, 9000), 1))
    with pytest.raises(errors.FileTooLarge, match="megapixels"):
        parse_document(huge, "huge.png")


def test_missing_tesseract_says_how_to_install_it(store, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on PATH: as on a server without the package
    result = store.add_files("default", [
        ("scan.pdf", scanned_pdf([EN_1])), ("photo.png", image_bytes(scan_image(KETTLE, noise=False))),
        ("text.pdf", mixed_pdf([("text", EN_3), ("text", "")])),  # a text PDF with a blank page needs no OCR
    ])
    assert [d.name for d in result.documents] == ["text.pdf"]
    errors_by_name = {e.name: e.error for e in result.errors}
    assert set(errors_by_name) == {"scan.pdf", "photo.png"}
    for message in errors_by_name.values():
        assert "Tesseract is not installed" in message
        assert "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim" in message
    assert "1 page(s) without a text layer" in errors_by_name["scan.pdf"]
    assert "not installed" in ocr.tesseract_status(ocr.OcrOptions())


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract-ocr")
def test_missing_language_data_names_the_package():
    assert "eng+chi_sim" in ocr.tesseract_status(ocr.OcrOptions()) or "chi_sim" not in LANGS
    with pytest.raises(errors.OcrUnavailable, match="apt-get install tesseract-ocr-xyz-q"):
        parse_document(image_bytes(scan_image(KETTLE)), "photo.png", ocr=ocr.OcrOptions(langs="eng+xyz_q"))


def test_ocr_turned_off():
    with pytest.raises(errors.NoTextLayer, match="OCR is turned off"):
        parse_document(scanned_pdf([EN_1]), "scan.pdf", ocr=None)


@pytest.mark.parametrize("bad", [{"ocr_langs": "eng chi"}, {"ocr_langs": "eng+"}, {"ocr_dpi": 50},
                                 {"ocr_dpi": 1200}])
def test_ocr_config_is_validated(bad, tmp_path):
    with pytest.raises(errors.InvalidConfig):
        RagConfig(data_dir=tmp_path, **bad)
