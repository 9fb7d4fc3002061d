"""The results document of ``bench.gpu``: rows for every planned step (pending until measured or
skipped), the environment, and atomic rewrites of the JSON and markdown after every change."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from bench.gpu_report import render_markdown

__all__ = ["Run", "pending_rows", "slug", "environment"]


def slug(device, tiny: bool) -> str:
    name = "cpu" if not device.is_gpu else f"{device.kind}-" + re.sub(r"[^a-z0-9]+", "-", device.name.lower()).strip("-")
    return name[:48] + ("-tiny" if tiny else "")


def environment(device) -> dict:
    from bench.common import environment as base_environment
    from engine.device import smi_summary

    env = base_environment()
    env["device"] = device.describe()
    env["bitsandbytes"] = _version("bitsandbytes")
    if device.is_gpu:
        import torch

        env["torch_cuda"] = torch.version.cuda
        env["smi"] = smi_summary()
    return env


def _version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


class Run:
    """The results document; ``save()`` rewrites the JSON and markdown atomically."""

    def __init__(self, results: dict, out: Path) -> None:
        self.results, self.out = results, out
        self.stem = f"{results['date']}-{results['device']}"

    def rows(self, key: str) -> list[dict]:
        return [row for row in self.results["rows"] if row["config"] == key]

    def set(self, row: dict, **values) -> None:
        row.update(values)
        self.save()

    def skip_rest(self, key: str, reason: str, status: str = "skipped") -> None:
        for row in self.rows(key):
            if row["status"] == "pending":
                row.update(status=status, reason=reason)
        self.save()

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        for suffix, text in ((".json", json.dumps(self.results, indent=2, ensure_ascii=False) + "\n"),
                             (".md", render_markdown(self.results))):
            target = self.out / (self.stem + suffix)
            tmp = target.with_suffix(suffix + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)


def pending_rows(configurations) -> list[dict]:
    reason = "not reached: the run stopped before this step"
    rows = []
    for config in configurations:
        rows.append({"config": config.key, "label": config.label, "step": f"load ({config.key})", "kind": "load",
                     "concurrency": 1, "status": "pending", "reason": reason})
        rows += [{"config": config.key, "label": config.label, "step": step.name, "kind": step.kind,
                  "concurrency": step.concurrency, "status": "pending", "reason": reason} for step in config.steps]
    return rows
