"""The System tab: a live view of the device, the model and the engine, refreshed by a timer.

Accelerators are read through torch (memory) and the vendor monitor that is present (``hy-smi``
on Hygon DCU, ``nvidia-smi``, ``rocm-smi``); the CPU and RAM through psutil. ``system_snapshot``
is plain data (tests and the API can use it); ``render_markdown`` turns it into the panel.
"""

from __future__ import annotations

import os
import sys

import gradio as gr
import psutil

from webui.i18n import language_of, register, t, text
from webui.services import Services

__all__ = ["build_system_tab", "system_snapshot", "render_markdown", "REFRESH_S"]

REFRESH_S = 3.0
GIB = 1024**3

register(
    en={"sys_models": "Models", "sys_loaded": "loaded", "sys_not_loaded": "not loaded (loads on first use)",
        "sys_loading": "loading…", "sys_default": "default", "sys_model": "Model", "sys_device": "Device", "sys_cpu": "CPU and memory", "sys_engine": "Engine",
        "sys_monitor": "Vendor monitor", "sys_auto_refresh": "Refresh every 3 s", "sys_refresh": "Refresh now",
        "sys_none": "no accelerator: running on the CPU", "sys_tools": "Tools (MCP servers)",
        "sys_tool_idle": "not started yet (starts on first use)", "sys_tool_starting": "starting…",
        "sys_tool_ready": "running", "sys_tool_failed": "FAILED", "sys_tool_crashed": "stopped (restarts on next use)",
        "sys_tool_stopped": "stopped", "sys_replicas": "Model servers (replicas)", "sys_replica_up": "up",
        "sys_replica_down": "DOWN", "sys_replica_counts": "in flight {f} · {n} requests · {e} errors"},
    zh={"sys_models": "模型列表", "sys_loaded": "已加载", "sys_not_loaded": "未加载（首次使用时加载）",
        "sys_loading": "加载中…", "sys_default": "默认", "sys_model": "模型", "sys_device": "设备", "sys_cpu": "CPU 与内存", "sys_engine": "引擎",
        "sys_monitor": "厂商监控工具", "sys_auto_refresh": "每 3 秒刷新", "sys_refresh": "立即刷新",
        "sys_none": "没有加速卡：在 CPU 上运行", "sys_tools": "工具（MCP 服务器）",
        "sys_tool_idle": "尚未启动（首次使用时启动）", "sys_tool_starting": "启动中…", "sys_tool_ready": "运行中",
        "sys_tool_failed": "失败", "sys_tool_crashed": "已停止（下次使用时重启）", "sys_tool_stopped": "已停止",
        "sys_replicas": "模型服务器（副本）", "sys_replica_up": "在线", "sys_replica_down": "离线",
        "sys_replica_counts": "进行中 {f} · 请求 {n} · 错误 {e}"},
)


def _accelerators() -> list[dict]:
    torch = sys.modules.get("torch")  # only when the engine already imported it; never load it here
    if torch is None or not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        try:
            free, total = torch.cuda.mem_get_info(index)
        except RuntimeError:  # some HIP builds cannot report free memory
            total = torch.cuda.get_device_properties(index).total_memory
            free = None
        found.append({"index": index, "name": torch.cuda.get_device_name(index), "total": total, "free": free,
                      "allocated": torch.cuda.memory_allocated(index), "reserved": torch.cuda.memory_reserved(index),
                      "peak": torch.cuda.max_memory_allocated(index), "hip": bool(getattr(torch.version, "hip", None))})
    return found


def _engine_state(status) -> dict:
    state: dict = {"waiting": status.waiting, "running": status.running, "capacity": status.capacity}
    if status.backend.peak_batch:
        state["peak_batch"] = status.backend.peak_batch
    kv = status.backend.kv_cache
    if kv is not None:
        state["kv_cache"] = {"entries": kv.entries, "bytes": kv.bytes, "max_bytes": kv.max_bytes,
                             "hits": kv.hits, "misses": kv.misses}
    return state


def system_snapshot(services: Services, smi: bool = True) -> dict:
    from engine.device import smi_summary

    vm = psutil.virtual_memory()
    process = psutil.Process()
    loaded = services.models.loaded()
    # "model" and "engine" are the default model's, or (while it is unloaded) the first one in memory.
    alias = services.models.default if services.models.default in loaded else next(iter(loaded), None)
    engine = loaded.get(alias) if alias is not None else None
    status = engine.status() if engine is not None else None
    info = status.info if status is not None else None
    return {
        "model": {"id": alias, "name": info.model, "backend": info.backend, "backend_detail": info.backend_detail,
                  "device": info.device, "device_name": info.device_name, "dtype": info.dtype,
                  "quantization": info.quantization} if info is not None else None,
        "models": [card.to_dict() for card in services.models.cards()],
        "accelerators": _accelerators(),
        "monitors": smi_summary(timeout=2.0) if smi else {},
        "cpu": {"cores": os.cpu_count(), "percent": psutil.cpu_percent(interval=None),
                "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
                "ram_used": vm.total - vm.available, "ram_total": vm.total, "process_rss": process.memory_info().rss},
        "engine": _engine_state(status) if status is not None else {},
        "tools": services.tools.status() if services.tools is not None else [],
    }


def _models_lines(rows: list[dict], lang: str) -> list[str]:
    lines = ["", f"### {text('sys_models', lang)}"]
    for row in rows:
        state = text("sys_loading" if row["loading"] else "sys_loaded" if row["loaded"] else "sys_not_loaded", lang)
        where = f" · {row['backend']} · {row['device'].upper()}" if row["loaded"] else f" · {row['backend']}"
        busy = f" · running {row['running']}" if row["running"] else ""
        default = f" ({text('sys_default', lang)})" if row["default"] else ""
        size = f" · {row['weights_bytes'] / GIB:.2f} GiB" if row["weights_bytes"] else ""
        lines.append(f"- **{row['id']}**{default}: {state}{where}{size}{busy} — `{row['source']}`")
    return lines


def _tools_lines(rows: list[dict], lang: str) -> list[str]:
    """Each tool server: how it is reached, its state, its tools, and why it failed (as text, not HTML)."""
    from webui.adapters import literal_html

    if not rows:
        return []
    lines = ["", f"### {text('sys_tools', lang)}"]
    for row in rows:
        state = text(f"sys_tool_{row['state']}", lang)
        trusted = " · trusted" if row["trusted"] else ""
        tools = f" · {', '.join(row['tools'])}" if row["tools"] else ""
        lines.append(f"- **{row['name']}** ({row['transport']}{trusted}): {state}{tools}")
        if row["error"]:
            lines.append(f"  - ⚠️ {literal_html(row['error'])}")
    return lines


def _replica_lines(rows: list[dict], lang: str) -> list[str]:
    """Each server of the remote models: up or down, its load, its errors and mean latency."""
    from webui.adapters import literal_html

    remote = [row for row in rows if row.get("replicas")]
    if not remote:
        return []
    lines = ["", f"### {text('sys_replicas', lang)}"]
    for row in remote:
        lines.append(f"- **{row['id']}**")
        for rep in row["replicas"]:
            state = f"🟢 {text('sys_replica_up', lang)}" if rep["up"] else f"🔴 {text('sys_replica_down', lang)}"
            counts = text("sys_replica_counts", lang, f=rep["in_flight"], n=rep["requests"], e=rep["errors"])
            latency = f" · {rep['latency_s']:.2f} s" if rep.get("latency_s") is not None else ""
            why = f" — {literal_html(rep['last_error'])}" if rep["last_error"] and not rep["up"] else ""
            lines.append(f"  - `{rep['name']}` {state} · {counts}{latency}{why}")
    return lines


def render_markdown(snap: dict, lang: str = "en") -> str:
    model, lines = snap["model"], []
    if model is not None:
        quant = f" · {model['quantization']}" if model["quantization"] else ""
        several = len(snap.get("models", ())) > 1  # then say which of them this is
        named = f"**{model['id']}**: " if several and model.get("id") else ""
        lines += [f"### {text('sys_model', lang)}",
                  f"{named}{model['name']} · {model['backend']} · {model['device'].upper()} ({model['device_name']}) · "
                  f"{model['dtype']}{quant}"]
        if model.get("backend_detail"):
            lines.append(f"- {model['backend_detail']}")
    if len(snap.get("models", ())) > 1:
        lines += _models_lines(snap["models"], lang)
    lines += _replica_lines(snap.get("models") or [], lang)
    lines += ["", f"### {text('sys_device', lang)}"]
    if not snap["accelerators"]:
        lines.append(text("sys_none", lang))
    for acc in snap["accelerators"]:
        free = f", {acc['free'] / GIB:.1f} GiB free" if acc["free"] is not None else ""
        lines.append(f"- **{acc['index']}: {acc['name']}** — {acc['total'] / GIB:.1f} GiB{free}; torch allocated "
                     f"{acc['allocated'] / GIB:.2f} GiB (peak {acc['peak'] / GIB:.2f}), reserved "
                     f"{acc['reserved'] / GIB:.2f} GiB")
    cpu = snap["cpu"]
    load = " / ".join(f"{x:.2f}" for x in cpu["load"]) if cpu["load"] else "n/a"
    lines += ["", f"### {text('sys_cpu', lang)}",
              f"- {cpu['cores']} cores · {cpu['percent']:.0f} % busy · load {load}",
              f"- RAM {cpu['ram_used'] / GIB:.1f} / {cpu['ram_total'] / GIB:.1f} GiB · this process "
              f"{cpu['process_rss'] / GIB:.2f} GiB"]
    engine = snap["engine"]
    if engine:
        lines += ["", f"### {text('sys_engine', lang)}"]
        if "running" in engine:
            lines.append(f"- running {engine['running']} / {engine['capacity']} · waiting {engine['waiting']}"
                         + (f" · largest batch so far {engine['peak_batch']}" if "peak_batch" in engine else ""))
        if "kv_cache" in engine:
            kv = engine["kv_cache"]
            lines.append(f"- KV cache: {kv['entries']} conversations, {kv['bytes'] / 1024**2:.0f} / "
                         f"{kv['max_bytes'] / 1024**2:.0f} MiB · {kv['hits']} hits, {kv['misses']} misses")
    lines += _tools_lines(snap.get("tools") or [], lang)
    for tool, output in snap["monitors"].items():
        lines += ["", f"### {text('sys_monitor', lang)}: `{tool}`", "```", output[-3000:], "```"]
    return "\n".join(lines)


def build_system_tab(services: Services) -> None:
    def refresh(request: gr.Request = None) -> str:
        return render_markdown(system_snapshot(services), language_of(request))

    with gr.Column(elem_id="system-tab"):
        panel = gr.Markdown(render_markdown(system_snapshot(services, smi=False)), elem_id="system-panel")
        with gr.Row():
            auto = gr.Checkbox(True, label=t("sys_auto_refresh"), elem_id="system-auto")
            now = gr.Button(t("sys_refresh"), size="sm", elem_id="system-refresh")
    timer = gr.Timer(REFRESH_S)
    quiet = {"show_progress": "hidden", "queue": False, "api_visibility": "private"}
    timer.tick(refresh, outputs=panel, **quiet)
    now.click(refresh, outputs=panel, **quiet)
    auto.change(lambda on: gr.Timer(active=on), inputs=auto, outputs=timer, **quiet)
