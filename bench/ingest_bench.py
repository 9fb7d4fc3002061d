"""Ingest benchmark: how fast a long PDF becomes searchable, stage by stage, and OCR at 3 DPIs.

``run(quick)`` returns a dict (``python -m bench.ingest_bench [--quick]`` prints it as JSON):

* ``stages``: a generated text PDF (396 pages; 40 in quick mode) through parse (pypdf) -> chunk
  -> embed (the bundled MiniLM) -> index (BM25 tokens, FAISS add, atomic save), pages/s each;
* ``embed_batch``: embedding chunks/s at several batch sizes (the store uses ``embed_batch_size``);
* ``ocr``: scanned pages (``bench.scans``: 300 DPI images of English and Chinese text at 8, 10 and
  12 pt) rendered at 150, 200 and 300 DPI and read by Tesseract: pages/s and character accuracy
  (difflib ratio against the true text, whitespace ignored). The store renders at 200 DPI;
* ``background``: the same PDF through ``IngestJobs`` as a background upload: seconds until the
  job id comes back, until done, and how many distinct progress values a poller saw.

Run it on a quiet machine: other load on the cores skews every number.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run"]

EN = ("Warranty terms. Every X200 pump carries a warranty of 36 months from the date of delivery. The warranty "
      "does not cover damage caused by frost or by running the pump dry. Replace the intake filter every six "
      "months and lubricate the bearings once a year with lithium grease.")
ZH = ("员工每年享有十五天带薪年假，未使用的年假可以顺延到下一年第一季度。差旅费用需要在出差结束后三十天内提交报销申请，"
      "并附上发票原件。设备维护由工程部负责，每季度检查一次服务器机房的温度和湿度。")


def _text_pdf(pages: int) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for n in range(pages):
        pdf.add_page()
        # ~250 words: a typical manual page, 1-2 chunks of 200 tokens
        pdf.multi_cell(0, 5, " ".join(f"Section {n}.{k}: the valve V-{n * 7 + k} in room {k} is checked every "
                                      f"{(n + k) % 60 + 2} days by the maintenance crew." for k in range(14)))
    return bytes(pdf.output())


def _embedder():
    from rag.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.load()
    embedder.embed(["warm-up"])  # first-call costs are not throughput
    return embedder


def bench_stages(pages: int, embedder) -> dict:
    from rag.chunking import chunk_document
    from rag.index import CollectionIndex, tokenize
    from rag.parsing import parse_document

    data = _text_pdf(pages)
    tokenize("预热 warm-up")  # jieba loads its dictionary once per process
    times: dict[str, float] = {}
    t = time.perf_counter()
    doc = parse_document(data, "bench.pdf")
    times["parse"] = time.perf_counter() - t
    t = time.perf_counter()
    chunks = chunk_document(doc, "bench", embedder.count_tokens, 200, 40)
    times["chunk"] = time.perf_counter() - t
    texts = [c.text for c in chunks]
    t = time.perf_counter()
    vectors = embedder.embed(texts, batch_size=32)
    times["embed"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index = CollectionIndex(Path(tmp), embedder.dim, embedder=embedder.name)
        index.add(list(range(len(texts))), vectors, [tokenize(x) for x in texts])
        index.save()
        index.search_lexical(["valve"], 5)  # include the lazy BM25 build
        times["index"] = time.perf_counter() - t
    total = sum(times.values())
    return {"pages": pages, "chunks": len(chunks), "seconds": {k: round(v, 2) for k, v in times.items()},
            "pages_per_s": {k: round(pages / v, 1) for k, v in times.items()} | {"total": round(pages / total, 2)}}


def bench_embed_batch(embedder, n: int) -> dict:
    texts = [f"The valve V-{k} in room {k % 9} is checked every {k % 60 + 2} days by the maintenance crew. " * 6
             for k in range(n)]  # ~150 tokens each, like real chunks
    out = {}
    for batch in (8, 16, 32, 64):
        t = time.perf_counter()
        embedder.embed(texts, batch_size=batch)
        out[str(batch)] = round(n / (time.perf_counter() - t), 1)
    return {"chunks": n, "chunks_per_s": out}


def bench_ocr(sizes: tuple[float, ...]) -> dict:
    import pypdfium2 as pdfium

    from bench.scans import cjk_font, scanned_pdf
    from rag import ocr

    font = cjk_font()
    truths = [text for _ in sizes for text in (EN, ZH)]
    documents = [pdfium.PdfDocument(scanned_pdf([EN, ZH], font, point_size=size)) for size in sizes]
    executable = ocr._executable(ocr.OcrOptions(), "The OCR benchmark")
    result = {}
    for dpi in (150, 200, 300):
        options = ocr.OcrOptions(dpi=dpi)
        accuracy, t = [], time.perf_counter()
        for n, truth in enumerate(truths):
            page = documents[n // 2][n % 2]
            text = ocr._ocr_image(executable, page.render(scale=dpi / 72, grayscale=True).to_pil(), options, "page")
            accuracy.append(difflib.SequenceMatcher(None, re.sub(r"\s+", "", truth), re.sub(r"\s+", "", text)).ratio())
        seconds = time.perf_counter() - t
        result[str(dpi)] = {"pages_per_s": round(len(truths) / seconds, 2), "accuracy_mean": round(sum(accuracy) / len(accuracy), 4),
                            "accuracy_min": round(min(accuracy), 4)}
    return {"pages": len(truths), "point_sizes": list(sizes), "langs": "eng+chi_sim", "single_process": result,
            "note": "one tesseract at a time here; the store runs one per core"}


def bench_background(pages: int, embedder) -> dict:
    from assist.ingest_jobs import IngestJobs
    from rag.config import RagConfig
    from rag.store import DocumentStore

    data = _text_pdf(pages)
    with tempfile.TemporaryDirectory() as tmp:
        store = DocumentStore(RagConfig(data_dir=Path(tmp)), embedder)
        jobs = IngestJobs(store, Path(tmp))
        t = time.perf_counter()
        job = jobs.submit("bench", "default", [("long.pdf", data)])
        accepted = time.perf_counter() - t
        seen = set()
        while (current := jobs.get(job.id, "bench")).status in ("queued", "running"):
            seen.add(current.progress)
            time.sleep(0.2)
        total = time.perf_counter() - t
        jobs.close()
        store.close()
    return {"pages": pages, "status": current.status, "submit_s": round(accepted, 3), "done_s": round(total, 1),
            "pages_per_s": round(pages / total, 2), "progress_values_seen": len(seen)}


def run(quick: bool = False) -> dict:
    import shutil

    pages = 40 if quick else 396
    embedder = _embedder()
    out = {"embedder": embedder.name, "device": embedder.device, "stages": bench_stages(pages, embedder),
           "embed_batch": bench_embed_batch(embedder, 64 if quick else 256)}
    if shutil.which("tesseract"):
        out["ocr"] = bench_ocr((10,) if quick else (8, 10, 12))
    else:
        out["ocr"] = {"skipped": "tesseract-ocr is not installed (make setup)"}
    out["background"] = bench_background(pages, embedder)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 pages, fewer OCR pages")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
