"""The System tab: a snapshot of device, memory and engine state, rendered in both languages."""

from __future__ import annotations

import gradio as gr

from engine.config import SamplingParams
from webui.services import Services
from webui.system_tab import build_system_tab, render_markdown, system_snapshot


def test_snapshot_reports_cpu_memory_and_engine_state(tiny_engine):
    tiny_engine.chat([{"role": "user", "content": "hello"}], SamplingParams(temperature=0, max_new_tokens=3),
                     session_id="system-tab")
    snap = system_snapshot(Services(engine=tiny_engine), smi=False)
    assert snap["model"]["backend"] == "transformers" and snap["accelerators"] == []
    assert snap["cpu"]["ram_total"] > snap["cpu"]["process_rss"] > 0
    assert snap["engine"]["capacity"] == tiny_engine.queue.capacity and snap["engine"]["kv_cache"]["entries"] >= 1
    english, chinese = render_markdown(snap, "en"), render_markdown(snap, "zh")
    assert "CPU and memory" in english and "KV cache" in english and "running on the CPU" in english
    assert "CPU 与内存" in chinese


def test_snapshot_of_a_backend_without_batching_or_kv_cache():
    from fakes import FakeEngine

    snap = system_snapshot(Services(engine=FakeEngine()), smi=False)
    assert snap["engine"] == {"waiting": 0, "running": 0, "capacity": 1}  # no peak batch, no KV cache
    assert "fake-model" in render_markdown(snap) and "KV cache" not in render_markdown(snap)


def test_tab_builds_with_a_timer(tiny_engine):
    with gr.Blocks() as blocks:
        build_system_tab(Services(engine=tiny_engine))
    assert any(isinstance(block, gr.Timer) for block in blocks.blocks.values())
