"""Regenerate the excerpts in this folder from the Debian/PyPI packages named in README.md.

Run once by hand (``python tests/data/real_docs/make_excerpts.py``); the tests only read the
committed files. Man pages are rendered by man-db/groff at 80 columns without justification,
then cut into pages of 58 lines with the manual's running header and a footer carrying the page
number, as a printed manual has them. Pages are separated by form feeds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINES_PER_PAGE = 58
# (output name, man page file, first/last rendered line kept: None = all)
MAN_PAGES = [
    ("xz.1.txt", "/usr/share/man/man1/xz.1.gz", None),
    ("jq.1.txt", "/usr/share/man/man1/jq.1.gz", 1480),
    ("psql.1.zh.txt", "/usr/share/man/zh_CN/man1/psql.1.gz", None),
    ("proc.5.zh.txt", "/usr/share/man/zh_CN/man5/proc.5.gz", None),
    ("iptables.8.zh.txt", "/usr/share/man/zh_CN/man8/iptables.8.gz", None),
    ("tcpdump.8.zh.txt", "/usr/share/man/zh_CN/man8/tcpdump.8.gz", None),
    ("bash.1.zh.txt", "/usr/share/man/zh_CN/man1/bash.1.gz", 754),
]


def render(path: str) -> list[str]:
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
    out = subprocess.run(["man", "--nj", "--nh", "-l", path], env=env, capture_output=True, text=True, check=True)
    text = re.sub(r".\x08", "", out.stdout)  # man writes bold and underline as overstrikes without a tty
    return [line.rstrip() for line in text.splitlines()]


def paginate(lines: list[str], keep: int | None) -> str:
    header, footer = lines[0], lines[-1].strip()
    body = lines[1:-1][:keep]
    while body and not body[0].strip():
        body.pop(0)
    pages = []
    for n, start in enumerate(range(0, len(body), LINES_PER_PAGE), start=1):
        text = [header, ""] + body[start:start + LINES_PER_PAGE] + ["", f"{footer}    {n}".rjust(80)]
        pages.append("\n".join(text))
    return "\f".join(pages) + "\n"


def main() -> None:
    for name, path, keep in MAN_PAGES:
        (HERE / name).write_text(paginate(render(path), keep), encoding="utf-8")
    from importlib.metadata import metadata

    (HERE / "bm25s_README.md").write_text(metadata("bm25s").get_payload().strip() + "\n", encoding="utf-8")
    print("wrote", sorted(p.name for p in HERE.iterdir()), file=sys.stderr)


if __name__ == "__main__":
    main()
