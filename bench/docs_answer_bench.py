"""Document answers end to end on real manuals: share right, prompt tokens, time to first token per stage.

The real manuals of ``tests/data/real_docs`` (English and Chinese man pages as printed PDFs, and
two reports with ruled tables; ``bench/corpora.py``) go into a store with the bundled embedder; the
questions of ``bench/data/docs_answer_questions.json`` (31 — the last two ask for a table cell —
about half Chinese; ``--quick``: 12) each have one checkable fact. Each question is asked through ``assist.answers.ask`` with the real default
model (or ``--model``), greedy, three times (``assist.answers.PROMPT_LAYOUTS``):

* ``before``: the prompt before issue 19 — whole expanded hits, sources before the instructions
  and the worked example;
* ``whole hits``: the new layout and rule with whole expanded hits (what reading less is compared with);
* ``after``: the default — passages selected within ``rag.prompts.DEFAULT_SOURCE_TOKENS``, the
  fixed rule first so llama.cpp's prompt cache reuses it (base models keep the sources first).

Their order rotates from question to question so load drifts hit all alike. An answer is right when the fact is in it (as a whole word) and it cites, by number,
a source on the document page that states the fact. TTFT is split into search (+ neighbouring
chunks), passage selection and prompt build, queue, and the engine's own time to the first token
(tokenizing, prefill and the first decoding step); ``ttft_s`` is the whole wait, measured around
the stream as a client sees it.

    python -m bench --only docs_answers [--quick] [--model PATH]
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from bench.corpora import DATA, load_corpus

__all__ = ["grade", "markdown_rows", "goals", "run"]

QUESTIONS = Path(__file__).resolve().parent / "data" / "docs_answer_questions.json"
MODES = {"before": {"layout": "before_issue_19"}, "whole hits": {"layout": "whole_hits"},
         "after": {"layout": "passages"}}
_CITED = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_MAX_TOKENS = 96  # one or two sentences; the fact comes first


def fact_in(text: str, spellings: list[str]) -> bool:
    """Whether one of ``spellings`` is in ``text`` as a whole word ("-c" not in "-cx", "del" not in
    "delete"; CJK around a number does not matter: "500条")."""
    for spelling in spellings:
        if not spelling.isascii():
            if spelling in text:
                return True
            continue
        pattern = r"(?<![A-Za-z0-9_\-])" + re.escape(spelling) + r"(?![A-Za-z0-9_])"
        if re.search(pattern, text, flags=re.IGNORECASE if spelling.isalpha() else 0):
            return True
    return False


def grade(question: dict, answer: str, hits: list, pages: dict[str, list[str]]) -> dict:
    """``fact``: the fact is in the answer; ``cited``: a cited number is a hit on a page stating it."""
    cited = {int(n) for group in _CITED.findall(answer) for n in re.split(r"\D+", group) if n}
    good = False
    for number in cited:
        if 1 <= number <= len(hits):
            hit = hits[number - 1]
            text = pages.get(hit.source, [])
            page = text[hit.page - 1] if hit.page and hit.page <= len(text) else ""
            good = good or (hit.source == question["source"] and fact_in(page, question["answer"]))
    fact = fact_in(answer, question["answer"])
    return {"fact": fact, "cited": good, "right": fact and good}


def _pages() -> dict[str, list[str]]:
    spec = json.loads((DATA / "real_questions.json").read_text(encoding="utf-8"))
    return {doc["name"]: (DATA / "real_docs" / doc["file"]).read_text(encoding="utf-8").split("\f")
            for doc in spec["documents"]}


def _ask(services, question: dict, params, layout: str) -> dict:
    """One answer through ``assist.answers.answer_stream``, timed as a client sees it."""
    from assist.answers import answer_stream
    from engine.stats import GenerationStats

    started = time.perf_counter()
    hits, parts, stats, hits_s, first_s = [], [], GenerationStats(), None, None
    for item in answer_stream(services, "bench", question["q"], params=params, layout=layout):
        if isinstance(item, tuple):
            hits, hits_s = item[1], time.perf_counter() - started
        elif isinstance(item, GenerationStats):
            stats = item
        else:
            first_s = first_s if first_s is not None else time.perf_counter() - started
            parts.append(item)
    extra = stats.extra
    return {"answer": "".join(parts), "hits": hits, "prompt_tokens": stats.prompt_tokens,
            "cached_tokens": stats.cached_tokens, "ttft_s": round(first_s or 0.0, 3),
            "hits_s": round(hits_s or 0.0, 3), "search_s": extra.get("search_s", 0.0),
            "prompt_s": extra.get("prompt_s", 0.0), "queue_s": round(stats.queue_s, 4),
            "engine_ttft_s": round(stats.ttft_s, 3), "completion_tokens": stats.completion_tokens}


def _summary(rows: list[dict]) -> dict:
    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 3) if rows else 0.0

    tokens = sorted(r["prompt_tokens"] for r in rows)
    p90 = tokens[min(len(tokens) - 1, round(0.9 * (len(tokens) - 1)))] if tokens else 0
    by_lang = {lang: sum(r["right"] for r in rows if r["lang"] == lang) for lang in ("en", "zh")}
    return {"right": sum(r["right"] for r in rows), "n": len(rows),
            "right_pct": round(100 * sum(r["right"] for r in rows) / max(len(rows), 1), 1),
            "fact": sum(r["fact"] for r in rows), "right_by_lang": by_lang,
            "median_prompt_tokens": med("prompt_tokens"), "p90_prompt_tokens": p90,
            "median_cached_tokens": med("cached_tokens"), "median_ttft_s": med("ttft_s"),
            "median_hits_s": med("hits_s"), "median_search_s": med("search_s"), "median_prompt_s": med("prompt_s"),
            "median_queue_s": med("queue_s"), "median_engine_ttft_s": med("engine_ttft_s")}


def run(quick: bool = False, model: str | None = None, engine=None, data_dir: str | None = None) -> dict:
    """Both modes over the question set; ``engine`` reuses a loaded one (else the default model);
    ``data_dir`` keeps the ingested manuals for the next run (ingesting them takes minutes here)."""
    from assist.answers import default_params
    from bench.common import load_engine
    from bench.rag_quality import CachingEmbedder
    from engine.models import ModelRegistry
    from rag.config import RagConfig
    from rag.embedding import SentenceTransformerEmbedder
    from rag.store import DocumentStore

    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    questions = [q for q in questions if q.get("quick")] if quick else questions
    engine = engine or load_engine(**({"model": model} if model else {}))
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    pages = _pages()
    params = default_params(max_tokens=_MAX_TOKENS)
    out: dict = {"model": engine.info.model, "backend": engine.info.backend, "questions": len(questions),
                 "modes": {name: dict(config) for name, config in MODES.items()}, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = data_dir or tmp
        store = DocumentStore(RagConfig(data_dir=Path(tmp)), CachingEmbedder(embedder))
        try:
            store.create_collection("bench", exist_ok=True)
            if not store.list_documents("bench"):
                added = store.add_files("bench", load_corpus("real").files)
                if added.errors:
                    raise RuntimeError(f"ingest failed: {added.errors}")
            services = SimpleNamespace(models=ModelRegistry.of(engine), store=store, rag_config=None)
            for n, question in enumerate(questions):
                order = list(MODES)[n % len(MODES):] + list(MODES)[:n % len(MODES)]
                for mode in order:
                    result = _ask(services, question, params, **MODES[mode])
                    verdict = grade(question, result["answer"], result.pop("hits"), pages)
                    out["rows"].append({"q": question["q"], "lang": question["lang"], "mode": mode,
                                        **verdict, **result})
            out["cache"] = _cache_check(services, questions[:3], params)
        finally:
            store.close()
    out["summary"] = {mode: _summary([r for r in out["rows"] if r["mode"] == mode]) for mode in MODES}
    return out


def _cache_check(services, questions: list[dict], params) -> dict:
    """Three questions in a row with the default prompt, as one user asks them: how much of each
    prompt llama.cpp took from its cache (the stable part: template header and rule)."""
    rows = [_ask(services, q, params, layout="passages") for q in questions]
    return {"prompt_tokens": [r["prompt_tokens"] for r in rows], "cached_tokens": [r["cached_tokens"] for r in rows]}


def goals(result: dict) -> list[tuple[str, str, bool | None]]:
    """The issue's targets: median grounded prompt <= 450 tokens, share right after >= before and
    >= whole hits (reading less loses nothing)."""
    summary = result.get("summary", {})
    before, whole, after = summary.get("before"), summary.get("whole hits"), summary.get("after")
    if not before or not after:
        return []
    return [("docs answers: median grounded prompt <= 450 tokens",
             f"{after['median_prompt_tokens']:.0f} (before {before['median_prompt_tokens']:.0f})",
             after["median_prompt_tokens"] <= 450),
            ("docs answers: share right after >= before",
             f"{after['right']}/{after['n']} vs {before['right']}/{before['n']}", after["right"] >= before["right"]),
            *([("docs answers: share right with passages >= with whole hits",
                f"{after['right']}/{after['n']} vs {whole['right']}/{whole['n']}", after["right"] >= whole["right"])]
              if whole else [])]


def markdown_rows(result: dict) -> list[list[str]]:
    """Rows ``prompt | right | prompt tokens | TTFT | search | selection+build | queue | engine TTFT | cached``."""
    rows = []
    cache = result.get("cache", {})
    cached = f"; in a row: {cache['cached_tokens']} of {cache['prompt_tokens']}" if cache.get("cached_tokens") else ""
    for mode, s in result.get("summary", {}).items():
        rows.append([mode, f"{s['right']}/{s['n']} ({s['right_by_lang']['en']} en, {s['right_by_lang']['zh']} zh; "
                           f"fact {s['fact']})",
                     f"{s['median_prompt_tokens']:.0f} / {s['p90_prompt_tokens']}", f"{s['median_ttft_s']:.2f}",
                     f"{s['median_search_s']:.3f}", f"{s['median_prompt_s']:.3f}", f"{s['median_queue_s']:.3f}",
                     f"{s['median_engine_ttft_s']:.2f}",
                     f"{s['median_cached_tokens']:.0f}" + (cached if mode == "after" else "")])
    return rows


HEADER = ["| docs answers | right (fact + source cited) | prompt tokens median / p90 | TTFT (s) | search (s) | "
          "selection + build (s) | queue (s) | engine TTFT: tokenize + prefill (s) | cached tokens |",
          "|---|---|---|---|---|---|---|---|---|"]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 of the questions")
    parser.add_argument("--model", default=None, help="model (default: the embedded default)")
    parser.add_argument("--backend", default=None, help="engine backend (default: auto)")
    parser.add_argument("--data-dir", default=None, help="keep the ingested manuals here for later runs")
    parser.add_argument("--out", default=None, help="also write the whole result (answers too) as JSON here")
    args = parser.parse_args()
    from bench.common import load_engine

    engine = load_engine(**{k: v for k, v in (("model", args.model), ("backend", args.backend)) if v})
    result = run(args.quick, engine=engine, data_dir=args.data_dir)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2, ensure_ascii=False))
    print("\n".join(HEADER + ["| " + " | ".join(row) + " |" for row in markdown_rows(result)]))


if __name__ == "__main__":
    main()
