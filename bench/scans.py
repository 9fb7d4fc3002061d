"""Synthetic "scans" for the OCR benchmark and tests: text drawn into images, PDFs without a text layer.

A page is rendered as a 300 DPI grayscale image (what office scanners produce), with a little blur
and noise so Tesseract sees something like paper rather than perfect pixels. ``scanned_pdf`` puts
such images into PDF pages with no text layer; ``mixed_pdf`` interleaves real text pages.
Chinese text needs a CJK font (Debian's fonts-wqy-microhei; ``cjk_font()`` finds it).
"""

from __future__ import annotations

import io
from pathlib import Path

__all__ = ["CJK_FONTS", "cjk_font", "scan_image", "scanned_pdf", "mixed_pdf", "image_bytes"]

CJK_FONTS = [
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
]
SCAN_DPI = 300
_PAGE_INCHES = (5.83, 8.27)  # A5: big enough for a paragraph, cheaper to OCR than A4


def cjk_font() -> Path | None:
    return next((p for p in CJK_FONTS if p.is_file()), None)


def _wrap(draw, text: str, font, width: int) -> list[str]:
    """Greedy wrapping that works for spaced (Latin) and unspaced (CJK) text alike."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        tokens = paragraph.split(" ") if " " in paragraph else list(paragraph)
        sep = " " if " " in paragraph else ""
        for token in tokens:
            candidate = f"{line}{sep}{token}" if line else token
            if draw.textlength(candidate, font=font) <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = token
        lines.append(line)
    return lines


def scan_image(text: str, font_path: Path | None = None, *, dpi: int = SCAN_DPI, point_size: float = 12,
               noise: bool = True, seed: int = 0):
    """A grayscale PIL image of ``text`` on an A5 page at ``dpi``, like a scanned sheet."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font_path = font_path or cjk_font()
    size = (round(_PAGE_INCHES[0] * dpi), round(_PAGE_INCHES[1] * dpi))
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    px = round(point_size * dpi / 72)
    font = ImageFont.truetype(str(font_path), px) if font_path else ImageFont.load_default(px)
    margin = dpi // 2
    y = margin
    for line in _wrap(draw, text, font, size[0] - 2 * margin):
        draw.text((margin, y), line, fill=0, font=font)
        y += round(px * 1.5)
    if noise:
        image = image.filter(ImageFilter.GaussianBlur(dpi / 400))
        rng = np.random.default_rng(seed)
        pixels = np.asarray(image, dtype=np.int16) + rng.normal(0, 12, size=(size[1], size[0])).astype(np.int16)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    return image


def image_bytes(image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, dpi=(SCAN_DPI, SCAN_DPI))
    return out.getvalue()


def scanned_pdf(pages: list[str], font_path: Path | None = None, **options) -> bytes:
    """A PDF whose pages are images of ``pages`` only: no text layer at all."""
    images = [scan_image(text, font_path, seed=n, **options) for n, text in enumerate(pages)]
    return _pdf([("image", im) for im in images])


def mixed_pdf(pages: list[tuple[str, str]], font_path: Path | None = None) -> bytes:
    """``[("text"|"scan", text), ...]``: text pages carry a text layer, scan pages are images."""
    items = [("image", scan_image(text, font_path, seed=n)) if kind == "scan" else ("text", text)
             for n, (kind, text) in enumerate(pages)]
    return _pdf(items, font_path)


def _pdf(items: list[tuple[str, object]], font_path: Path | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format=(148, 210))  # A5 in mm
    if font_path is not None:
        pdf.add_font("cjk", fname=str(font_path), collection_font_number=0)
        pdf.set_font("cjk", size=11)
    else:
        pdf.set_font("Helvetica", size=11)
    for kind, content in items:
        pdf.add_page()
        if kind == "image":
            pdf.image(content, x=0, y=0, w=pdf.w, h=pdf.h)
        else:
            pdf.multi_cell(0, 6, str(content))
    return bytes(pdf.output())
