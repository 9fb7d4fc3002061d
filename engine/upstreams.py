"""The upstream servers of a remote model: ``base_url`` with one URL or several, each with its key.

Syntax (docs/deploy.md):

- flag / environment / ``--model …,base_url=A;B``: URLs separated by ``;``;
  ``remote_api_key`` is one key for every URL, or ``K1;K2`` — one per URL, in the same order
  (an empty slot means no key for that URL).
- TOML ``[[models]]``: ``base_url = ["http://a/v1", {url = "http://b/v1", api_key = "K"}]``; a table's
  ``api_key`` wins over ``remote_api_key`` for its URL.

``EngineConfig`` keeps the flat text form (``normalize``), so every source reads the same way
afterwards; ``upstreams`` splits it into (url, key) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError

__all__ = ["Upstream", "normalize", "upstreams"]

SEPARATOR = ";"


@dataclass(frozen=True)
class Upstream:
    url: str  # the server's /v1 URL, no trailing slash
    api_key: str | None = None


def normalize(base_url, api_key: str | None) -> tuple[str | None, str | None]:
    """A TOML list (strings and ``{url, api_key}`` tables) -> the ``A;B`` text and positional ``K1;K2`` keys."""
    if base_url is None or isinstance(base_url, str):
        return base_url, api_key
    if not isinstance(base_url, list | tuple):
        raise ConfigError(f"base_url must be a URL, URLs separated by ';', or a list of them (got {base_url!r}).")
    urls, keys = [], []
    shared = api_key if api_key and SEPARATOR not in api_key else None
    for entry in base_url:
        if isinstance(entry, str):
            urls.append(entry)
            keys.append(shared or "")
        elif isinstance(entry, dict) and isinstance(entry.get("url"), str):
            unknown = set(entry) - {"url", "api_key"}
            if unknown:
                raise ConfigError(f"base_url entry {entry['url']!r}: unknown key(s) {', '.join(sorted(unknown))} "
                                  "(an entry has url and api_key).")
            urls.append(entry["url"])
            keys.append(str(entry.get("api_key") or shared or ""))
        else:
            raise ConfigError(f"base_url entries are URLs or {{url = …, api_key = …}} tables (got {entry!r}).")
    if api_key and SEPARATOR in api_key:  # positional keys given besides a list: keep them as given
        return SEPARATOR.join(urls), api_key
    return SEPARATOR.join(urls), (SEPARATOR.join(keys) if any(keys) else None)


def upstreams(base_url: str, api_key: str | None) -> list[Upstream]:
    """``A;B`` and ``K`` or ``K1;K2`` -> one Upstream per URL; errors say what to write instead."""
    urls = [u.strip().rstrip("/") for u in base_url.split(SEPARATOR) if u.strip()]
    if not urls:
        raise ConfigError("--base-url is empty; give the server's /v1 URL, e.g. http://127.0.0.1:8000/v1.")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--base-url {url!r} must start with http:// or https:// (several URLs are "
                              "separated by ';').")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"--base-url names a server twice: {base_url!r}.")
    if not api_key or SEPARATOR not in api_key:
        return [Upstream(url, api_key or None) for url in urls]
    keys = [k.strip() for k in api_key.split(SEPARATOR)]
    if len(keys) != len(urls):
        raise ConfigError(f"--remote-api-key has {len(keys)} keys separated by ';' but --base-url has {len(urls)} "
                          "URLs; give one key for all, or one per URL in the same order.")
    return [Upstream(url, key or None) for url, key in zip(urls, keys, strict=True)]
