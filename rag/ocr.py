"""OCR of scanned pages and images with Tesseract (Debian ``tesseract-ocr`` + language data).

PDF pages are rendered with pypdfium2 at ``dpi`` (200 by default: docs/performance.md has the
measurements), grayscale, and handed to the ``tesseract`` command as PNG on stdin. We run the
command ourselves rather than through pytesseract because the child process must get
``OMP_THREAD_LIMIT=1`` (pytesseract passes our whole environment, and setting the variable
process-wide would also cap torch's threads for embedding). Tesseract's own OpenMP threads were
slower than one thread per page on a busy 2-core machine (15.9 vs 13.7 s/page in the same run),
so pages are OCR'd in parallel instead, one single-threaded Tesseract per core — the way
Tesseract's documentation recommends for throughput.

Tesseract puts spaces between Chinese characters; they are removed so the text reads (and
tokenizes) like a text-layer PDF. Missing Tesseract or language data is an ``OcrUnavailable``
whose message says how to install it.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rag.errors import CorruptFile, FileTooLarge, OcrFailed, OcrUnavailable, TooManyPages

__all__ = ["PDFIUM_LOCK", "OcrOptions", "ocr_pdf_pages", "pages_with_images", "ocr_image_file", "ocr_words", "tesseract_status",
           "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = ("install it with: sudo apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim "
                "(or run make setup)")
# Debian package names of the language data, for the install hint.
_LANG_PACKAGES = {"chi_sim": "tesseract-ocr-chi-sim", "chi_tra": "tesseract-ocr-chi-tra", "eng": "tesseract-ocr-eng"}
_CJK_SPACE = re.compile(r"(?<=[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]) +(?=[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef])")
_PAGE_TIMEOUT_S = 300  # a pathological image must not hold an upload forever
_MAX_PIXELS = 60_000_000  # about A2 at 300 DPI; larger images are almost certainly not documents

PageProgress = Callable[[int, int], None]  # (pages done, pages to do)
# pdfium is not thread-safe, not even across documents: every use in this process (OCR here, page
# previews in rag.page_image) holds this lock.
PDFIUM_LOCK = threading.RLock()


@dataclass(frozen=True)
class OcrOptions:
    """``langs`` in Tesseract's ``eng+chi_sim`` form; ``command`` is looked up on PATH."""

    langs: str = "eng+chi_sim"
    dpi: int = 200
    command: str = "tesseract"
    workers: int = 0  # parallel Tesseract processes; 0: one per CPU core


@functools.lru_cache(maxsize=8)
def _installed_languages(executable: str) -> frozenset[str]:
    out = subprocess.run([executable, "--list-langs"], capture_output=True, text=True, timeout=30)
    return frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


def _executable(options: OcrOptions, what: str) -> str:
    """The Tesseract binary, or ``OcrUnavailable`` naming ``what`` needed it and how to install it."""
    path = shutil.which(options.command)
    if path is None:
        raise OcrUnavailable(f"{what} needs OCR, but Tesseract is not installed on the server; {INSTALL_HINT}.")
    missing = [lang for lang in options.langs.split("+") if lang not in _installed_languages(path)]
    if missing:
        packages = " ".join(_LANG_PACKAGES.get(lang, f"tesseract-ocr-{lang.replace('_', '-')}") for lang in missing)
        raise OcrUnavailable(f"{what} needs OCR in {'+'.join(missing)}, but Tesseract has no data for it; "
                             f"install it with: sudo apt-get install {packages} (or change --ocr-langs).")
    return path


def tesseract_status(options: OcrOptions) -> str:
    """One line for the startup log and ``doctor``: version and languages, or what is missing."""
    try:
        path = _executable(options, "Reading scanned pages")
    except OcrUnavailable as exc:
        return str(exc)
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
    return f"{version.strip()} ({options.langs})"


def _ocr_image(executable: str, image, options: OcrOptions, where: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run([executable, "-", "-", "-l", options.langs, "--psm", "3"], input=buffer.getvalue(),
                              capture_output=True, env=env, timeout=_PAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise OcrFailed(f"OCR of {where} took longer than {_PAGE_TIMEOUT_S} s and was stopped.") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise OcrFailed(f"Tesseract could not read {where}: {message[0]}")
    text = done.stdout.decode("utf-8", errors="replace").replace("\x0c", "")
    return _CJK_SPACE.sub("", text)


def _run_pages(executable: str, render: Callable[[int], object], labels: Sequence[str], options: OcrOptions,
               progress: PageProgress | None) -> list[str]:
    """OCR one page per label (``render(i)`` gives the i-th image) in parallel; texts in order."""
    count = len(labels)
    workers = options.workers or max(1, os.cpu_count() or 1)
    results: list[str] = [""] * count
    done = 0

    def one(i: int) -> tuple[int, str]:
        return i, _ocr_image(executable, render(i), options, labels[i])

    with ThreadPoolExecutor(max_workers=min(workers, max(count, 1)), thread_name_prefix="ocr") as pool:
        for i, text in pool.map(one, range(count)):
            results[i] = text
            done += 1
            if progress:
                progress(done, count)
    return results


def pages_with_images(data: bytes, page_numbers: Sequence[int]) -> list[int]:
    """Those of the given 1-based pages that draw at least one image (blank pages need no OCR)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    if not page_numbers:
        return []
    with PDFIUM_LOCK:
        document = pdfium.PdfDocument(data)
        try:
            found = []
            for number in page_numbers:
                page = document[number - 1]
                try:
                    if next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]), None) is not None:
                        found.append(number)
                finally:
                    page.close()
            return found
        finally:
            document.close()


def ocr_pdf_pages(data: bytes, name: str, page_numbers: Sequence[int], options: OcrOptions,
                  progress: PageProgress | None = None) -> dict[int, str]:
    """Text of the given 1-based pages of a PDF, read by OCR."""
    import pypdfium2 as pdfium

    if not page_numbers:
        return {}
    executable = _executable(options, f"{name} has {len(page_numbers)} page(s) without a text layer (scanned), which")
    try:
        with PDFIUM_LOCK:
            document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise CorruptFile(f"{name} could not be rendered for OCR ({exc}); it may be damaged.") from exc
    lock = PDFIUM_LOCK  # render one page at a time (Tesseract runs outside it)

    def render(i: int):
        with lock:
            page = document[page_numbers[i] - 1]
            try:
                return page.render(scale=options.dpi / 72, grayscale=True).to_pil()
            finally:
                page.close()

    try:
        texts = _run_pages(executable, render, [f"{name} page {n}" for n in page_numbers], options, progress)
    finally:
        with lock:
            document.close()
    return dict(zip(page_numbers, texts, strict=True))


def ocr_image_file(data: bytes, name: str, options: OcrOptions, max_pages: int | None = None,
                   progress: PageProgress | None = None) -> list[str]:
    """Text of each frame of an image file (PNG, JPEG, one or more TIFF pages)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        frames = getattr(image, "n_frames", 1)
        if image.width * image.height > _MAX_PIXELS:
            raise FileTooLarge(f"{name} is {image.width}x{image.height} pixels; images over "
                               f"{_MAX_PIXELS // 1_000_000} megapixels are not read. Scan at 300 DPI or less.")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise CorruptFile(f"{name} could not be read as an image ({exc}); it may be damaged or misnamed.") from exc
    if max_pages is not None and frames > max_pages:
        raise TooManyPages(f"{name} has {frames} pages; the limit is {max_pages}. Split it into smaller files.")
    executable = _executable(options, f"{name} is an image, which")
    images = []
    # The iterator seeks one shared image object: each frame is converted (copied) before the next.
    try:
        for frame in ImageSequence.Iterator(image):
            images.append(frame.convert("L") if frame.mode not in ("L", "1") else frame.copy())
    except OSError as exc:  # truncated data shows up only when the pixels are decoded
        raise CorruptFile(f"{name} could not be decoded ({exc}); it may be truncated.") from exc
    labels = [name] if len(images) == 1 else [f"{name} page {n}" for n in range(1, len(images) + 1)]
    return _run_pages(executable, images.__getitem__, labels, options, progress)


def ocr_words(image, options: OcrOptions, where: str = "a scanned page") -> list[tuple[str, tuple[int, int, int, int]]]:
    """The words Tesseract reads on ``image`` with their boxes ``(left, top, right, bottom)`` in its
    pixels, in reading order (its TSV output); used to mark a cited passage on a scanned page."""
    executable = _executable(options, f"Marking the passage on {where}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run([executable, "-", "-", "-l", options.langs, "--psm", "3", "tsv"],
                              input=buffer.getvalue(), capture_output=True, env=env, timeout=_PAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise OcrFailed(f"OCR of {where} took longer than {_PAGE_TIMEOUT_S} s and was stopped.") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise OcrFailed(f"Tesseract could not read {where}: {message[0]}")
    words = []
    for line in done.stdout.decode("utf-8", errors="replace").splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) == 12 and cells[0] == "5" and cells[11].strip():  # level 5: a word
            left, top, width, height = (int(v) for v in cells[6:10])
            words.append((cells[11].strip(), (left, top, left + width, top + height)))
    return words
