"""One page of a PDF or image drawn as a PNG, with a cited passage marked in yellow.

PDF pages are rendered by pypdfium2 at a scale that makes them ``width`` pixels wide. The passage
is found among the page's words: for a text layer, pdfium's characters and their boxes; for a scan
(no text layer) and for image files, the words Tesseract reads with their boxes
(``rag.ocr.ocr_words``, at the DPI used when the document was read, so it reads the same text).
The passage's words are aligned with the page's by ``difflib`` (robust to line breaks, hyphens and
a few OCR slips); the matched words between the first and the last match are covered with
semi-transparent yellow boxes, one per line (PIL ``ImageDraw``).
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Callable, Sequence

from rag.errors import CorruptFile, PageNotFound
from rag.ocr import PDFIUM_LOCK, OcrOptions, ocr_words

__all__ = ["Words", "render_page", "passage_boxes", "passage_band", "HIGHLIGHT", "WIDTH"]

WIDTH = 1000  # pixels: a page readable on a laptop screen, ~120 DPI for A4
HIGHLIGHT = (255, 214, 0, 110)  # RGBA: a text marker's yellow, the ink still readable under it
_MIN_RUN = 3  # words in a row a page must share with the passage before they count as it
_BAND = "dcu-passage"  # PNG text chunk: where the marked passage is, "top,bottom" as fractions of the height
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+")
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")

Box = tuple[float, float, float, float]  # left, top, right, bottom in the image's pixels
Words = list[tuple[str, Box]]
WordsCache = Callable[[Callable[[], Words]], Words]  # get the OCR'd words of the page, computing them once


def render_page(data: bytes, fmt: str, page: int, passage: str | None = None, ocr: OcrOptions | None = None,
                width: int = WIDTH, ocr_cache: WordsCache | None = None) -> bytes:
    """PNG bytes of 1-based ``page`` of a ``pdf`` or ``image`` document, ``passage`` (if any) marked.

    Without ``ocr`` (or Tesseract) a scanned page is drawn unmarked."""
    if fmt == "pdf":
        image, words, scan = _pdf_page(data, page, width, passage is not None, ocr)
    else:
        image, words, scan = _image_page(data, page, width, ocr)
    if passage and scan is not None and ocr is not None:
        words = ocr_cache(scan) if ocr_cache is not None else scan()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    boxes = passage_boxes(words, passage) if passage else []
    if boxes:
        image = _highlight(image, boxes)
        top, bottom = min(b[1] for b in boxes) / image.height, max(b[3] for b in boxes) / image.height
        info.add_text(_BAND, f"{max(0.0, top):.4f},{min(1.0, bottom):.4f}")
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def passage_band(png: bytes) -> tuple[float, float] | None:
    """``(top, bottom)`` of the marked passage as fractions of the page's height, if one is marked
    (the page script scrolls it into view)."""
    from PIL import Image

    value = Image.open(io.BytesIO(png)).info.get(_BAND)
    if not value:
        return None
    top, bottom = (float(v) for v in value.split(","))
    return top, bottom


def _pdf_page(data: bytes, page: int, width: int, want_words: bool, ocr: OcrOptions | None):
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise CorruptFile(f"The PDF could not be rendered ({exc}); it may be damaged.") from exc
        try:
            if not 1 <= page <= len(document):
                raise PageNotFound(f"The document has {len(document)} page(s); there is no page {page}.")
            pdf_page = document[page - 1]
            try:
                page_width, _ = pdf_page.get_size()
                crop_left, crop_bottom, crop_right, crop_top = pdf_page.get_bbox()  # the area drawn (crop box)
                rotation = pdf_page.get_rotation()  # /Rotate: drawn turned, text boxes given unturned
                scale = width / page_width
                image = pdf_page.render(scale=scale).to_pil().convert("RGB")
                words: Words = []
                if want_words:
                    textpage = pdf_page.get_textpage()
                    try:
                        words = _turned(_pdf_words(textpage, scale, crop_left, crop_top), rotation,
                                        (crop_right - crop_left) * scale, (crop_top - crop_bottom) * scale)
                    finally:
                        textpage.close()
                scanned = want_words and sum(len(w) for w, _ in words) < 3
                ocr_image = pdf_page.render(scale=ocr.dpi / 72, grayscale=True).to_pil() if scanned and ocr else None
            finally:
                pdf_page.close()
        finally:
            document.close()
    if ocr_image is None:
        return image, words, None
    ratio = scale / (ocr.dpi / 72)
    return image, [], lambda: _scaled(ocr_words(ocr_image, ocr, f"page {page}"), ratio)


def _turned(words: Words, rotation: int, width: float, height: float) -> Words:
    """Boxes of an unturned page (``width`` x ``height`` pixels) on the page as drawn, turned clockwise."""
    if rotation == 90:
        return [(w, (height - b[3], b[0], height - b[1], b[2])) for w, b in words]
    if rotation == 180:
        return [(w, (width - b[2], height - b[3], width - b[0], height - b[1])) for w, b in words]
    if rotation == 270:
        return [(w, (b[1], width - b[2], b[3], width - b[0])) for w, b in words]
    return words


def _pdf_words(textpage, scale: float, origin_x: float, origin_top: float) -> Words:
    """Words of a text layer with their boxes in the rendered image's pixels; CJK characters one by one."""
    import pypdfium2.raw as pdfium_c

    words: Words = []
    current, box = "", None

    def flush() -> None:
        nonlocal current, box
        if current:
            words.append((current, box))
        current, box = "", None

    for index in range(textpage.count_chars()):
        char = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, index) or 32)
        if char.isspace() or not char.isprintable():
            flush()
            continue
        left, bottom, right, top = textpage.get_charbox(index)
        char_box = ((left - origin_x) * scale, (origin_top - top) * scale, (right - origin_x) * scale,
                    (origin_top - bottom) * scale)
        if _CJK.match(char):
            flush()
            words.append((char, char_box))
            continue
        current += char
        box = char_box if box is None else _union(box, char_box)
    flush()
    return words


def _image_page(data: bytes, page: int, width: int, ocr: OcrOptions | None):
    from PIL import Image, UnidentifiedImageError

    try:
        source = Image.open(io.BytesIO(data))
        if not 1 <= page <= getattr(source, "n_frames", 1):
            raise PageNotFound(f"The image has {getattr(source, 'n_frames', 1)} page(s); there is no page {page}.")
        source.seek(page - 1)
        frame = source.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise CorruptFile(f"The image could not be read ({exc}); it may be damaged.") from exc
    scale = min(1.0, width / frame.width)  # large scans shrink to ``width``; small images stay as they are
    image = frame.resize((round(frame.width * scale), round(frame.height * scale))) if scale < 1 else frame
    gray = frame.convert("L")
    return image, [], (lambda: _scaled(ocr_words(gray, ocr, f"page {page}"), scale)) if ocr else None


def _scaled(words: Words, ratio: float) -> Words:
    return [(w, tuple(v * ratio for v in box)) for w, box in words]


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _tokens(value: str) -> list[str]:
    return [m.group().lower() for m in _TOKEN.finditer(value)]


def passage_boxes(words: Sequence[tuple[str, Box]], passage: str) -> list[Box]:
    """Boxes (one per line) over the words of ``words`` that make up ``passage``; [] when it is not there."""
    page_tokens: list[str] = []
    owner: list[int] = []  # the word each page token belongs to
    for i, (word, _) in enumerate(words):
        for token in _tokens(word):
            page_tokens.append(token)
            owner.append(i)
    wanted = _tokens(passage)
    if not wanted or not page_tokens:
        return []
    matcher = difflib.SequenceMatcher(None, page_tokens, wanted, autojunk=False)
    least = min(_MIN_RUN, len(wanted))
    found = [b for b in matcher.get_matching_blocks() if b.size]
    anchors = [b for b in found if b.size >= least]
    if not anchors:
        return []
    # Shorter matches count too where the passage's own length puts them (a slip cut a run short).
    start = anchors[0].a - anchors[0].b - 2
    stop = anchors[-1].a + len(wanted) - anchors[-1].b + 2
    blocks = [b for b in found if b in anchors or (start <= b.a and b.a + b.size <= stop)]
    hit = sorted({owner[k] for b in blocks for k in range(b.a, b.a + b.size)})
    first, last = hit[0], hit[-1]
    matched = sum(b.size for b in blocks)
    # One run of the page: mark it whole (OCR slips and hyphens inside it included); scattered
    # matches far apart are only marked where they are.
    if matched * 2 >= len(wanted) and (last - first + 1) <= 1.5 * len(wanted) + 5:
        hit = list(range(first, last + 1))
    return _lines([words[i][1] for i in hit])


def _lines(boxes: list[Box]) -> list[Box]:
    """Consecutive word boxes on one line joined into one box."""
    out: list[Box] = []
    for box in boxes:
        if out:
            last = out[-1]
            height = min(last[3] - last[1], box[3] - box[1]) or 1
            overlap = min(last[3], box[3]) - max(last[1], box[1])
            if overlap >= 0.5 * height and -height <= box[0] - last[2] <= 3 * height:
                out[-1] = _union(last, box)
                continue
        out.append(box)
    return out


def _highlight(image, boxes: list[Box]):
    from PIL import Image, ImageDraw

    if not boxes:
        return image
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for left, top, right, bottom in boxes:
        pad = max(1.0, 0.12 * (bottom - top))
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=HIGHLIGHT)
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
