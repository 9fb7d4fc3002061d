"""The one wording for an unknown key in a config table ([[sync]], [[mcp_servers]]), with a guess."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["unknown_key"]


def unknown_key(where: str, table: dict, keys: Sequence[str]) -> str | None:
    """A message naming the first key of ``table`` not in ``keys`` (and the likely meant one), or None."""
    unknown = sorted(set(table) - set(keys))
    if not unknown:
        return None
    close = difflib.get_close_matches(unknown[0], keys, 1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{where}: unknown key {unknown[0]!r}{hint}; the keys are {', '.join(keys)}."
