"""Turn the benchmark results into one markdown table (configuration x speed, TTFT, memory)."""

from __future__ import annotations

__all__ = ["render_markdown", "goals"]

GIB = 1024**3


def _fmt(value, digits: int = 2) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def goals(results: dict) -> list[tuple[str, str, bool | None]]:
    """(goal, measured, met) for the issue's targets; met is None when not measured."""
    out: list[tuple[str, str, bool | None]] = []
    overhead = results.get("overhead", {})
    if "overhead_pct" in overhead:
        out.append(("engine stream overhead vs bare generate <= 5 %", f"{overhead['overhead_pct']} %",
                    overhead["overhead_pct"] <= 5))
    turns = results.get("turns", {})
    if "ttft_turn8_over_turn1_with_reuse" in turns:
        ratio = turns["ttft_turn8_over_turn1_with_reuse"]
        out.append(("TTFT turn 8 <= 1.5x turn 1 (KV reuse)",
                    f"{ratio}x (without reuse {turns['ttft_turn8_over_turn1_without_reuse']}x)", ratio <= 1.5))
    if results.get("quality"):
        from bench.quality_bench import goals as quality_goals

        out.extend(quality_goals(results["quality"]))
    runs = {run["streams"]: run for run in results.get("concurrency", {}).get("runs", [])}
    if 1 in runs and 4 in runs:
        speedup = runs[4]["speedup_vs_1"]
        out.append(("4 streams aggregate >= 1.5x one stream", f"{speedup}x", speedup >= 1.5))
    out.extend(_llama_goals(results.get("llamacpp", {})))
    if results.get("api_speed", {}).get("models"):
        from bench.api_speed_bench import goals as api_speed_goals

        out.extend(api_speed_goals(results["api_speed"]))
    if results.get("docs_answers", {}).get("summary"):
        from bench.docs_answer_bench import goals as docs_answer_goals

        out.extend(docs_answer_goals(results["docs_answers"]))
    cold = results.get("first_start", {}).get("cold_cache", {})
    if "healthy_s" in cold:
        out.append(("first start (empty model cache): serving within 30 s", f"{cold['healthy_s']} s",
                    cold["healthy_s"] <= 30))
    return out


def _llama_goals(llama: dict) -> list[tuple[str, str, bool | None]]:
    out: list[tuple[str, str, bool | None]] = []
    if llama.get("decode_ratio_vs_bare") is not None:
        ratio = llama["decode_ratio_vs_bare"]
        out.append(("llama.cpp: our decode >= 0.95x bare xllamacpp", f"{ratio}x", ratio >= 0.95))
    turns = llama.get("turns", {})
    if "ttft_turn8_over_turn1_with_reuse" in turns:
        ratio = turns["ttft_turn8_over_turn1_with_reuse"]
        out.append(("llama.cpp: TTFT turn 8 <= 1.5x turn 1 (prompt cache)", f"{ratio}x", ratio <= 1.5))
    runs = {run["streams"]: run for run in llama.get("concurrency", {}).get("runs", [])}
    if 1 in runs and 4 in runs:
        speedup = runs[4]["speedup_vs_1"]
        bare = {run["streams"]: run for run in llama.get("concurrency", {}).get("bare_runs", [])}
        ceiling = f" (bare xllamacpp {bare[4]['speedup_vs_1']}x)" if 4 in bare else ""
        out.append(("llama.cpp: 4 streams aggregate >= 1.5x one stream", f"{speedup}x{ceiling}", speedup >= 1.5))
    workloads = llama.get("prompt_lookup", {}).get("workloads", {})
    if workloads:
        same = all(row["same_text_as_without"] for result in workloads.values()
                   for who, row in result.items() if who.startswith("with_"))
        out.append(("llama.cpp prompt lookup: greedy text identical with and without", "yes" if same else "no", same))
    rss = llama.get("rss", {}).get("rss_bytes")
    if rss:
        out.append(("app RSS with default model + embedder <= 1.5 GiB", f"{rss / GIB:.2f} GiB", rss <= 1.5 * GIB))
    return out


def _llama_rows(llama: dict, device: str) -> list[list[str]]:
    rows: list[list[str]] = []
    decode, ttft = llama.get("decode", {}), llama.get("ttft_300", {})
    for who, label in (("ours", "llama.cpp backend (ours)"), ("bare", "bare xllamacpp server (ceiling)")):
        if who in decode:
            rows.append([label, device, "Q4_K_M", "1", _fmt(decode[who]["decode_tokens_per_s"]),
                         _fmt(ttft.get(who, {}).get("ttft_s"), 3), "",
                         f"decode of {decode[who]['tokens']} tokens (llama.cpp's own timing "
                         f"{_fmt(decode[who]['llamacpp_tokens_per_s'])}); TTFT for {ttft.get('prompt_tokens')} "
                         "prompt tokens, cache off"])
    turns = llama.get("turns", {})
    for turn in (0, -1):
        if turns.get("with_reuse"):
            row = turns["with_reuse"][turn]
            rows.append([f"llama.cpp chat turn {1 if turn == 0 else len(turns['with_reuse'])} (history resent)",
                         device, "Q4_K_M", "1", _fmt(row["tokens_per_s"]), _fmt(row["ttft_s"], 3), "",
                         f"{row['prompt_tokens']} prompt tokens, {row['cached_tokens']} cached"
                         + (f"; without cache {turns.get('turn8_without_reuse_ttft_s')} s" if turn == -1 else "")])
    concurrency = llama.get("concurrency", {})
    for key, label in (("runs", "llama.cpp"), ("bare_runs", "bare xllamacpp")):
        for run in concurrency.get(key, []):
            per_stream = (f"; {run['median_stream_tokens_per_s']} tok/s per stream"
                          if "median_stream_tokens_per_s" in run else "")
            slowest = f"; slowest stream {run['slowest_stream_s']} s" if "slowest_stream_s" in run else ""
            rounds = (f"; per round {run['speedup_vs_1_rounds']}x, {run['aggregate_tokens_per_s_rounds']} tok/s"
                      if len(run.get("speedup_vs_1_rounds", [])) > 1 else "")
            rows.append([f"{label} {run['streams']} concurrent streams", device, "Q4_K_M", str(run["streams"]),
                         _fmt(run["aggregate_tokens_per_s"]), _fmt(run["median_ttft_s"], 3), "",
                         f"{run['speedup_vs_1']}x one stream (median of rounds){per_stream}{slowest}{rounds}"])
    lookup = llama.get("prompt_lookup", {})
    for name, result in lookup.get("workloads", {}).items():
        for who in (k for k in result if k.startswith("with_")):
            row, base = result[who], result["without"]
            rows.append([f"llama.cpp {name}, prompt lookup {who.removeprefix('with_')}", device, "Q4_K_M", "1",
                         _fmt(row["completion_tokens"] / row["total_s"]), "", "",
                         f"{row['total_s']} s vs {base['total_s']} s without ({row['speedup_vs_without']}x; "
                         f"decode {row['decode_s']} vs {base['decode_s']} s); {row['draft_accepted']} of "
                         f"{row['draft_tokens']} drafted tokens kept; same text: "
                         f"{'yes' if row['same_text_as_without'] else 'NO'}; flash attention off in both"])
    rss = llama.get("rss", {})
    if rss.get("rss_bytes"):
        rows.append(["app process (--backend auto)", device, rss.get("backend", ""), "", "", "",
                     f"RSS {rss['rss_bytes'] / GIB:.2f} GiB", "default model + embedder loaded, one answer"])
    return rows


def _rows(results: dict) -> list[list[str]]:
    rows: list[list[str]] = []
    env = results.get("environment", {})
    device = "GPU " + env["gpu"] if env.get("gpu") else f"CPU x{env.get('cores')}"
    default = results.get("default_config", {})
    label = default.get("quantization") or default.get("dtype", "")
    overhead = results.get("overhead", {})
    if "engine_tokens_per_s" in overhead:
        rows.append(["bare model.generate", label, "1", _fmt(overhead["bare_tokens_per_s"]), "", "",
                     "end-to-end incl. prefill"])
        rows.append(["engine stream", label, "1", _fmt(overhead["engine_tokens_per_s"]), "", "",
                     f"overhead {overhead['overhead_pct']} %"])
    turns = results.get("turns", {})
    for name in ("with_reuse", "without_reuse"):
        for turn in (0, -1):
            if turns.get(name):
                row = turns[name][turn]
                number = 1 if turn == 0 else len(turns["with_reuse"])
                rows.append([f"chat turn {number} ({name.replace('_', ' ')})", label, "1",
                             _fmt(row["tokens_per_s"]) if name == "with_reuse" else "", _fmt(row["ttft_s"], 3), "",
                             f"{row['prompt_tokens']} prompt tokens, {row['cached_tokens']} cached"])
    for run in results.get("concurrency", {}).get("runs", []):
        rows.append([f"{run['streams']} concurrent streams", label, str(run["streams"]),
                     _fmt(run["aggregate_tokens_per_s"]), _fmt(run["median_ttft_s"], 3), "",
                     f"{run['speedup_vs_1']}x one stream; {run['median_stream_tokens_per_s']} tok/s per stream"])
    quant = results.get("quantization", {})
    for config in quant.get("configs", []):
        memory = f"weights {config['weights_bytes'] / GIB:.2f} GiB"
        if config.get("peak_device_memory_bytes"):
            memory += f", device peak {config['peak_device_memory_bytes'] / GIB:.2f} GiB"
        rows.append([f"precision {config['config']}", config["label"], "1", _fmt(config["decode_tokens_per_s"]),
                     _fmt(config["ttft_s"], 3), memory,
                     f"ppl x{config['perplexity_ratio']}, top-1 {config['top1_agreement']:.0%}, greedy match "
                     f"{config['greedy_matching_tokens']}; TTFT for {config['prompt_tokens']} prompt tokens"])
    llama = quant.get("llama_cpp", {})
    if "decode_tokens_per_s" in llama:
        rows.append(["llama.cpp (same GGUF)", "Q4_K_M", "1", _fmt(llama["decode_tokens_per_s"]),
                     _fmt(llama["ttft_s"], 3), "", "optional comparison"])
    lookup = results.get("prompt_lookup", {})
    for name in ("without", "with"):
        if name in lookup:
            row = lookup[name]
            rows.append([f"code fix, prompt lookup {name}", label, "1", _fmt(row["tokens_per_s"]),
                         _fmt(row["ttft_s"], 3), "", f"{row['completion_tokens']} tokens end-to-end"
                         + (f"; speedup {lookup['speedup']}x, same output: {lookup['same_output']}"
                            if name == "with" else "")])
    for row in rows:
        row.insert(1, device)
    return rows + _llama_rows(results.get("llamacpp", {}), device)


def _rag_rows(rag: dict) -> list[list[str]]:
    rows = []
    for search in rag.get("search", []):
        for kind in ("exact", "ann"):
            part = search.get(kind, {}) if isinstance(search, dict) else {}
            for mode in ("dense", "hybrid"):
                if "p50_ms" in part.get(mode, {}):
                    rows.append([f"RAG search ({kind} index, {mode})", f"{search.get('chunks')} chunks",
                                 "p50 / p95 ms", f"{part[mode]['p50_ms']} / {part[mode]['p95_ms']}",
                                 f"ANN recall@10 {search.get('ann_recall_at_10')}" if kind == "ann" else ""])
    return rows


def _ingest_rows(ingest: dict) -> list[list[str]]:
    """Rows of ``bench/ingest_bench.py``: pages/s per stage, embedding batch sizes, OCR per DPI."""
    rows = []
    stages = ingest.get("stages", {})
    for stage, value in stages.get("pages_per_s", {}).items():
        rows.append([f"ingest: {stage}", f"{stages.get('pages')}-page text PDF, {stages.get('chunks')} chunks",
                     "pages/s", value, ingest.get("embedder", "") if stage == "embed" else ""])
    for batch, value in ingest.get("embed_batch", {}).get("chunks_per_s", {}).items():
        rows.append(["ingest: embed batch", f"batch size {batch}", "chunks/s", value, ""])
    ocr = ingest.get("ocr", {})
    for dpi, part in ocr.get("single_process", {}).items():
        rows.append([f"ingest: OCR at {dpi} DPI", f"{ocr.get('pages')} scanned pages ({ocr.get('langs')})",
                     "pages/s · accuracy", f"{part['pages_per_s']} · {part['accuracy_mean']} (min {part['accuracy_min']})",
                     ocr.get("note", "")])
    background = ingest.get("background", {})
    if background:
        rows.append(["ingest: background job", f"{background.get('pages')}-page PDF",
                     "202 after · done after", f"{background.get('submit_s')} s · {background.get('done_s')} s",
                     f"{background.get('progress_values_seen')} progress values seen"])
    return rows


def render_markdown(results: dict) -> str:
    env = results.get("environment", {})
    lines = [f"# dcu-chat benchmark — {results.get('date')} — {results.get('device')}", "",
             f"{'Quick' if results.get('quick') else 'Full'} run; torch {env.get('torch')}, transformers "
             f"{env.get('transformers')}, {env.get('cores')} cores, load average at start "
             f"{env.get('load_avg_start')} and end {results.get('load_avg_end')} "
             "(timings on a shared machine are noisy; compare rows of one run). Peak memory of the whole "
             f"benchmark process: {results.get('main_process_peak_rss_bytes', 0) / GIB:.2f} GiB RSS.", "",
             "| configuration | device | precision | concurrency | tokens/s | TTFT (s) | peak memory | notes |",
             "|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(results)]
    rag = results.get("rag")
    if rag:
        lines += ["", "| RAG | workload | metric | value | notes |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in _rag_rows(rag)]
    ingest = results.get("ingest")
    if ingest and "error" not in ingest:
        lines += ["", "| ingest | workload | metric | value | notes |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in _ingest_rows(ingest)]
    quality = results.get("quality")
    if quality and "runs" in quality:
        from bench.quality_bench import markdown as quality_markdown

        lines += ["", f"Answer quality (greedy; goal {quality['goal']}):", "", quality_markdown(quality)]
    rag_quality = results.get("rag_quality")
    if rag_quality and "stages" in rag_quality:
        from bench.rag_quality import markdown_rows

        lines += ["", "| retrieval stage | question set | hit@1 | hit@5 | notes |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in markdown_rows(rag_quality)]
    api_speed = results.get("api_speed")
    if api_speed and api_speed.get("models"):
        from bench.api_speed_bench import markdown_rows as api_speed_rows

        lines += ["", "| over /v1 | workload | ours (tok/s) | bare xllamacpp (tok/s) | ratio | notes |",
                  "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in api_speed_rows(api_speed)]
    docs_answers = results.get("docs_answers")
    if docs_answers and docs_answers.get("summary"):
        from bench.docs_answer_bench import HEADER as DOCS_HEADER
        from bench.docs_answer_bench import markdown_rows as docs_answer_rows

        lines += ["", *DOCS_HEADER]
        lines += ["| " + " | ".join(row) + " |" for row in docs_answer_rows(docs_answers)]
    first_start = results.get("first_start")
    if first_start and "cold_cache" in first_start:
        from bench.first_start import markdown_rows as first_start_rows

        lines += ["", "| first start | model cache | healthy after (s) | first token after healthy (s) | answer |",
                  "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in first_start_rows(first_start)]
    met = goals(results)
    if met:
        lines += ["", "| goal | measured | met |", "|---|---|---|"]
        lines += [f"| {goal} | {measured} | {'—' if ok is None else 'yes' if ok else 'no'} |" for goal, measured, ok in met]
    notes = [results.get("quantization", {}).get("gpu_note"), results.get("quantization", {}).get(
        "llama_cpp", {}).get("skipped")]
    notes += [f"{name}: {section['error']}" for name, section in results.items()
              if isinstance(section, dict) and "error" in section]
    lines += [""] + [f"- {note}" for note in notes if note]
    return "\n".join(lines) + "\n"
