"""``bench.gpu`` results as markdown: the seed's table shape (configuration x tokens/s, TTFT,
peak memory, concurrency), then the published 7B figures it is meant to be read against."""

from __future__ import annotations

__all__ = ["render_markdown", "ANCHORS", "HEADLINE"]

GIB = 1024**3
# Published single-stream and aggregate figures for 7B models on one A100 (quoted in issue 13).
ANCHORS = (
    ("7B fp16, 1 stream", "100–105 tok/s"),
    ("7B int8, 1 stream", "155 tok/s"),
    ("7B int4, 1 stream", "197 tok/s"),
    ("7B, 16 concurrent requests", "1,272 tok/s aggregate"),
    ("7B, 64 concurrent requests", "3,024 tok/s aggregate"),
)
# The seed's headline table for 7B models.
HEADLINE = (("transformers", "50 tok/s"), ("vLLM", "150 tok/s"), ("TensorRT-LLM", "200 tok/s"),
            ("quantized", "120 tok/s"))


def _num(value, digits: int = 2) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def _params(count: int) -> str:
    return f"{count / 1e9:.2f} B" if count >= 1e9 else f"{count / 1e6:.1f} M"


def _notes(row: dict) -> str:
    if row["status"] != "measured":
        return f"{row['status']}: {row.get('reason', '')}"
    parts = []
    if row.get("prompt_tokens"):
        parts.append(f"{row['prompt_tokens']} prompt tokens")
    if row.get("prefill_tokens_per_s"):
        parts.append(f"prefill {row['prefill_tokens_per_s']:,.0f} tok/s")
    if row["kind"] == "streams":
        parts.append(f"{row.get('stream_tokens_per_s')} tok/s per stream, slowest TTFT {row.get('max_ttft_s')} s, "
                     f"largest batch {row.get('peak_batch')}")
    if row["kind"] == "generate" and row["concurrency"] == 1 and row.get("end_to_end_tokens_per_s"):
        parts.append(f"{row['end_to_end_tokens_per_s']} tok/s end to end")
    if row["kind"] == "generate" and row["concurrency"] > 1:
        parts.append(f"all tokens / wall time like the streams; decode {row.get('decode_tokens_per_s')} tok/s")
    if row["kind"] == "kv":
        parts.append(f"turn 1 TTFT {row['turn1_ttft_s']} s; turn 8 {row['turn8_over_turn1']}x turn 1 with reuse "
                     f"({row['cached_tokens']} cached), {row['turn8_without_reuse_ttft_s']} s without")
    if row["kind"] == "oom":
        parts.append(f"long request -> OutOfMemory, next request {row['next_request_tokens']} tokens "
                     f"(card capped at {row['cap_bytes'] / GIB:.2f} GiB)")
    if row["kind"] == "load":
        parts.append(f"{row.get('how', '')}; weights {row.get('weights_bytes', 0) / GIB:.2f} GiB")
    if row.get("note"):
        parts.append(row["note"])
    return "; ".join(parts)


def _row(row: dict) -> str:
    measured = row["status"] == "measured"
    memory = f"{row['peak_memory_bytes'] / GIB:.2f}" if measured and row.get("peak_memory_bytes") else ""
    speed = _num(row.get("tokens_per_s")) if measured else row["status"]
    ttft = _num(row.get("ttft_s"), 3) if measured else ""
    if row["kind"] == "load" and measured:
        ttft = ""
        speed = f"load {row.get('wall_s')} s"
    cells = [row["step"], row["label"], str(row["concurrency"]), speed, ttft, memory, _notes(row)]
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def render_markdown(results: dict) -> str:
    env = results.get("environment", {})
    model = results.get("model", {})
    lines = [
        f"# dcu-chat GPU benchmark — {results.get('date')} — {results.get('device')}"
        + (" (--tiny)" if results.get("tiny") else ""), "",
        f"{env.get('gpu') or 'no GPU (CPU: ' + str(env.get('cpu')) + ')'}; torch {env.get('torch')}, transformers "
        f"{env.get('transformers')}, bitsandbytes {env.get('bitsandbytes') or 'not installed'}. Model: "
        f"{model.get('shape', {}).get('name')} ({_params(model.get('parameters', 0))} parameters, random "
        f"weights), {model.get('how', '')}. Greedy decoding, no EOS (fixed lengths): "
        f"{results.get('sizes', {}).get('single_new')} new tokens for one stream, "
        f"{results.get('sizes', {}).get('stream_new')} per concurrent stream. Budget {results.get('budget_s')} s, "
        f"used {results.get('elapsed_s')} s{'' if results.get('finished') else ' (run still going or stopped)'}.",
        "",
        "tokens/s: one stream = decode rate after the first token; concurrent streams and batches = all tokens "
        "/ wall time. TTFT = time to first token. Peak memory: device memory allocated by torch (RSS on a CPU).",
        "",
        "| configuration | precision | concurrency | tokens/s | TTFT (s) | peak memory (GiB) | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(row) for row in results.get("rows", [])]
    lines += ["", "For comparison, not measured here — published figures for 7B models on one A100:", "",
              "| published (A100, 7B) | tokens/s |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in ANCHORS]
    lines += ["", "The seed's headline for 7B models: "
              + ", ".join(f"{name} {value}" for name, value in HEADLINE) + "."]
    notes = results.get("notes", [])
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
