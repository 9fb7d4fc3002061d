"""Chat presets: a saved system prompt plus sampling parameters, chosen in one click.

Each user has their own presets (same owner rule as conversations: another user's preset does
not exist for you); a few built-in ones, in English and Chinese, are offered to everyone and
cannot be changed or deleted (saving one under its name makes your own copy). Parameters are
optional: a preset that leaves one out leaves the Chat's current value alone. Stored in SQLite
(one row per preset, written in a transaction).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from assist.db import open_db, write_transaction
from assist.errors import AssistError

__all__ = ["Preset", "PresetStore", "PresetError", "PresetNotFound", "BUILTIN_PRESETS", "PARAM_RANGES"]

# name -> (lowest, highest, integer?): the ranges of the Chat tab's sliders
PARAM_RANGES: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 2.0, False), "top_p": (0.05, 1.0, False), "top_k": (0, 200, True),
    "max_new_tokens": (16, 4096, True), "repetition_penalty": (1.0, 2.0, False),
}
MAX_PRESETS = 200
MAX_NAME = 60
MAX_PROMPT = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS presets (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (owner, id)
);
"""


class PresetError(AssistError):
    """A preset cannot be saved or used as asked."""

    http_status = 400


class PresetNotFound(PresetError):
    http_status = 404


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    system_prompt: str = ""
    params: dict = field(default_factory=dict)
    builtin: bool = False

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "system_prompt": self.system_prompt, "params": dict(self.params),
                "builtin": self.builtin}


BUILTIN_PRESETS: tuple[Preset, ...] = (
    Preset("builtin-translator", "Translator zh↔en · 中英互译",
           "You are a translator between Chinese and English. If the user writes Chinese, translate it into "
           "natural English; otherwise translate it into natural Simplified Chinese. Reply with the translation "
           "only, keeping the meaning, tone and formatting.\n你是中英翻译：用户写中文就译成英文，写英文就译成中文，"
           "只输出译文。", {"temperature": 0.2, "top_p": 0.9}, builtin=True),
    Preset("builtin-reviewer", "Code reviewer · 代码审查",
           "You are a careful code reviewer. For the code you are given, list real problems first (bugs, edge "
           "cases, security, performance), each with the line it concerns and a fix, then briefly note style. "
           "Do not rewrite the whole program. Answer in the language of the question.",
           {"temperature": 0.3, "max_new_tokens": 1024}, builtin=True),
    Preset("builtin-concise", "Concise · 简洁",
           "Answer in at most three sentences, without preamble or repetition. Answer in the language of the "
           "question.\n回答不超过三句话，不要开场白，用提问的语言回答。",
           {"temperature": 0.5, "max_new_tokens": 256}, builtin=True),
    Preset("builtin-chinese-teacher", "中文老师 · Chinese tutor",
           "你是一位耐心的中文老师。用简单的中文解释，必要时给出拼音和英文释义，并举一个例句。",
           {"temperature": 0.7}, builtin=True),
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def clean_params(params) -> dict:
    """Known parameters within the Chat's ranges; ``PresetError`` names the first that is not."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise PresetError("\"params\" must be an object such as {\"temperature\": 0.3}.")
    out = {}
    for name, value in params.items():
        if name not in PARAM_RANGES:
            raise PresetError(f"Unknown parameter {name!r}; presets keep {', '.join(PARAM_RANGES)}.")
        low, high, integer = PARAM_RANGES[name]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            raise PresetError(f"{name} must be a number from {low:g} to {high:g} (got {value!r}).")
        out[name] = int(value) if integer else float(value)
    return out


class PresetStore:
    """Every user's presets in ``path``, plus the built-in ones."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self._conn = open_db(self.path, _SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise PresetError(f"Cannot open the presets database {self.path} ({exc}); check that the data "
                              "directory is writable.") from exc

    def list(self, owner: str) -> list[Preset]:
        """The built-in presets, then the owner's own by name."""
        with self._lock:
            rows = self._conn.execute("SELECT id, name, system_prompt, params FROM presets WHERE owner = ? "
                                      "ORDER BY name COLLATE NOCASE", (owner,)).fetchall()
        return [*BUILTIN_PRESETS, *(Preset(i, n, p, json.loads(x)) for i, n, p, x in rows)]

    def get(self, owner: str, preset_id: str) -> Preset:
        found = next((p for p in self.list(owner) if p.id == preset_id), None)
        if found is None:
            raise PresetNotFound("This preset does not exist (it may have been deleted).")
        return found

    def save(self, owner: str, name: str, system_prompt: str = "", params: dict | None = None,
             preset_id: str | None = None) -> Preset:
        """Create a preset, or update the owner's preset ``preset_id`` (or the one with this name)."""
        name = " ".join(str(name or "").split())
        if not name or len(name) > MAX_NAME:
            raise PresetError(f"A preset needs a name of 1-{MAX_NAME} characters.")
        if not isinstance(system_prompt, str) or len(system_prompt) > MAX_PROMPT:
            raise PresetError(f"The system prompt must be text of at most {MAX_PROMPT} characters.")
        clean = clean_params(params)
        if preset_id and any(p.id == preset_id for p in BUILTIN_PRESETS):
            preset_id = None  # a built-in is never changed: saving it makes the user's own copy
        with write_transaction(self._conn, self._lock) as conn:
            if preset_id and conn.execute("SELECT 1 FROM presets WHERE owner = ? AND id = ?",
                                          (owner, preset_id)).fetchone() is None:
                raise PresetNotFound("This preset does not exist (it may have been deleted).")
            same_name = conn.execute("SELECT id FROM presets WHERE owner = ? AND name = ?", (owner, name)).fetchone()
            if same_name and preset_id and same_name[0] != preset_id:
                raise PresetError(f"You already have a preset named {name!r}; choose another name.")
            if not preset_id and not same_name:  # a new one
                count = conn.execute("SELECT COUNT(*) FROM presets WHERE owner = ?", (owner,)).fetchone()[0]
                if count >= MAX_PRESETS:
                    raise PresetError(f"You have {MAX_PRESETS} presets, the most there can be; delete one first.")
            preset_id = preset_id or (same_name[0] if same_name else "p-" + uuid.uuid4().hex[:12])
            conn.execute("INSERT INTO presets (owner, id, name, system_prompt, params, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner, id) DO UPDATE SET name = excluded.name, "
                         "system_prompt = excluded.system_prompt, params = excluded.params, "
                         "updated_at = excluded.updated_at",
                         (owner, preset_id, name, system_prompt, json.dumps(clean), _now()))
        return Preset(preset_id, name, system_prompt, clean)

    def delete(self, owner: str, preset_id: str) -> None:
        if any(p.id == preset_id for p in BUILTIN_PRESETS):
            raise PresetError("Built-in presets cannot be deleted.")
        with write_transaction(self._conn, self._lock) as conn:
            if conn.execute("DELETE FROM presets WHERE owner = ? AND id = ?", (owner, preset_id)).rowcount == 0:
                raise PresetNotFound("This preset does not exist (it may have been deleted).")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
