"""rag.parsing: every supported format, and every kind of bad input a user can upload."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag import errors
from rag.parsing import parse_document, sanitize_name

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def make_pdf(pages: list[str], font: Path | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    if font:
        pdf.add_font("cjk", fname=str(font), collection_font_number=0)
        pdf.set_font("cjk", size=11)
    else:
        pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
        else:
            pdf.rect(20, 20, 100, 60)  # a "scan": graphics, no text
    return bytes(pdf.output())


def encrypt(data: bytes, user: str, owner: str | None = None) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user, owner, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


LONG = ("The warranty covers parts and labor for three years from the date of purchase, and an extended "
        "warranty to five years can be bought within the first year. ") * 3


def test_pdf_pages_are_numbered_from_one_and_lines_are_unwrapped():
    doc = parse_document(make_pdf(["First page. " + LONG, "Second page text.", "Third page."]), "manual.pdf")
    assert doc.format == "pdf" and doc.page_count == 3
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "Second page text." in doc.pages[1].text
    # multi_cell wrapped the long sentence over several lines; parsing joins them again
    assert "three years from the date of purchase, and an extended warranty" in doc.pages[0].text


@pytest.mark.skipif(not CJK_FONT.is_file(), reason="CJK font missing: apt-get install fonts-wqy-microhei")
def test_chinese_pdf_text_is_extracted_and_joined_without_spaces():
    text = "机房温度应保持在十八度至二十七度之间，相对湿度控制在百分之四十至六十。值班人员每天巡检两次，巡检结果必须记录在运维系统中。" * 2
    doc = parse_document(make_pdf([text], CJK_FONT), "运维手册.pdf")
    assert doc.name == "运维手册.pdf"
    assert "值班人员每天巡检两次" in doc.pages[0].text
    assert "\n" not in doc.pages[0].text.split("。")[1]


def test_encrypted_pdf_is_rejected_with_a_clear_message():
    with pytest.raises(errors.EncryptedFile, match=r"secret\.pdf is encrypted; decrypt it and upload again\."):
        parse_document(encrypt(make_pdf(["Confidential."]), "pw"), "secret.pdf")


def test_pdf_with_only_an_owner_password_opens_with_the_empty_password():
    doc = parse_document(encrypt(make_pdf(["Readable text."]), "", "owner-pw"), "locked.pdf")
    assert "Readable text." in doc.pages[0].text


@pytest.mark.parametrize("data", [
    b"%PDF-1.4\nthis is not really a pdf\n%%EOF",
    b"%PDF-1.7\n" + bytes(range(1, 256)) * 20,
    b"PK\x03\x04 a zip renamed to pdf",
])
def test_corrupt_pdf(data):
    with pytest.raises((errors.CorruptFile, errors.EmptyFile)) as info:
        parse_document(data, "broken.pdf")
    assert "broken.pdf" in str(info.value)


def test_truncated_pdf_is_corrupt_or_partial_never_a_crash():
    data = make_pdf(["Page one text.", "Page two text."])
    try:
        doc = parse_document(data[: len(data) // 2], "cut.pdf")
    except errors.RagError as exc:
        assert "cut.pdf" in str(exc)
    else:
        assert doc.pages


def test_pdf_with_neither_text_nor_images():
    # Drawings only: nothing to OCR either (scanned pages are covered in test_rag_ocr.py).
    with pytest.raises(errors.NoTextLayer, match="no extractable text and no scanned pages"):
        parse_document(make_pdf(["", ""]), "drawing.pdf")


def test_pdf_page_limit():
    with pytest.raises(errors.TooManyPages, match="3 pages; the limit is 2"):
        parse_document(make_pdf(["a", "b", "c"]), "long.pdf", max_pages=2)


def test_file_size_limit():
    with pytest.raises(errors.FileTooLarge) as info:
        parse_document(b"x" * 2048, "big.txt", max_bytes=1024)
    assert info.value.http_status == 413


@pytest.mark.parametrize("name", ["empty.txt", "empty.pdf", "empty.md", "empty.html", "empty.docx"])
def test_empty_files(name):
    with pytest.raises(errors.EmptyFile, match="is empty"):
        parse_document(b"", name)


def test_whitespace_only_text_is_empty():
    with pytest.raises(errors.EmptyFile):
        parse_document(b"  \n\t \n", "blank.txt")


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
    bytes((i * 37 + 11) % 256 for i in range(4096) if (i * 37 + 11) % 256),  # high bytes, no NUL
])
def test_binary_file_named_txt(data):
    with pytest.raises(errors.UnsupportedFile, match="looks like a binary file"):
        parse_document(data, "photo.txt")


@pytest.mark.parametrize("name", ["program.exe", "archive.zip", "README", "slides.pptx"])
def test_unsupported_extension(name):
    with pytest.raises(errors.UnsupportedFile, match="not supported"):
        parse_document(b"data", name)


@pytest.mark.parametrize("text", [
    "你好，世界。这是一个测试文件。",
    "公司的年假政策是每年十五天带薪假期。员工需要提前两周向主管提交申请，获得批准后方可休假。\n" * 5,
])
@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_gbk_text_is_decoded(text, encoding):
    doc = parse_document(text.encode(encoding), "notes.txt")
    assert doc.pages[0].text == text and doc.page_count is None and doc.pages[0].number is None


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_unicode_text_encodings(encoding):
    text = "Café crème — 中文 text\nsecond line"
    assert parse_document(text.encode(encoding), "a.txt").pages[0].text == text


def test_latin1_text_is_decoded():
    text = "Le café est prêt. Voilà une très belle journée à la campagne, où l'on mange des crêpes."
    assert "café" in parse_document(text.encode("latin-1"), "fr.txt").pages[0].text


def test_markdown_keeps_its_text():
    md = "# Guide\n\n## Install\n\nRun `pip install x`.\n"
    doc = parse_document(md.encode(), "guide.md")
    assert doc.format == "md" and doc.pages[0].text == md


def test_html_text_headings_and_tables():
    html = b"""<html><head><title>t</title><style>p{color:red}</style></head><body>
    <h1>Guide</h1><p>Intro <b>bold</b> text &amp; more.</p><script>alert(1)</script>
    <h2>Table</h2><table><tr><td>a</td><td>b</td></tr></table><ul><li>one</li><li>two</li></ul></body></html>"""
    text = parse_document(html, "page.html").pages[0].text
    assert "# Guide" in text and "## Table" in text
    assert "Intro bold text & more." in text
    assert "alert" not in text and "color" not in text
    assert "a | b" in text and "one\ntwo" in text


def test_docx_paragraphs_headings_and_tables():
    import docx

    document = docx.Document()
    document.add_heading("Handbook", level=1)
    document.add_paragraph("Core hours are 10 to 16.")
    document.add_heading("Leave", level=2)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Annual", "25 days"
    out = io.BytesIO()
    document.save(out)
    text = parse_document(out.getvalue(), "handbook.docx").pages[0].text
    assert text.splitlines() == ["# Handbook", "Core hours are 10 to 16.", "## Leave", "| Annual | 25 days |",
                                 "| --- | --- |"]


def test_corrupt_and_legacy_docx():
    with pytest.raises(errors.CorruptFile, match="could not be read as a Word document"):
        parse_document(b"PK\x03\x04garbage" * 10, "bad.docx")
    with pytest.raises(errors.UnsupportedFile, match="old Word 97-2003"):
        parse_document(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.docx")


@pytest.mark.parametrize("raw, clean", [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    ("bad\x00name\n.md", "badname.md"),
    ("", "document"),
    ("/", "document"),
    ("..", "document"),
])
def test_sanitize_name(raw, clean):
    assert sanitize_name(raw) == clean


def test_every_error_has_an_http_status():
    classes = [getattr(errors, name) for name in errors.__all__]
    assert all(issubclass(c, errors.RagError) and 400 <= c.http_status < 600 for c in classes)
    assert errors.CollectionNotFound.http_status == 404 and errors.FileTooLarge.http_status == 413
