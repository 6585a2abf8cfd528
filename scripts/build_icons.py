"""Rebuild static/vendor/lucide/sprite.svg from a lucide-static package (ISC licence).

    curl -sO https://registry.npmjs.org/lucide-static/-/lucide-static-1.62.0.tgz
    tar xzf lucide-static-1.62.0.tgz
    python scripts/build_icons.py package/icons

Only the icons named in ICONS are kept, each as a <symbol id="NAME">; templates draw one with
``{% icon "NAME" %}`` (meshplay/templatetags/ui.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ICONS = sorted(
    {
        "activity", "arrow-left", "arrow-right", "ban", "bell", "braces", "calendar-clock",
        "check", "chevron-down", "chevron-left", "chevron-right", "circle-alert",
        "circle-check", "circle-dot", "circle-help", "circle-pause", "circle-user", "circle-x",
        "clock", "cloud", "external-link", "eye", "eye-off", "flame", "gauge", "globe", "inbox",
        "info", "key-round", "layers", "layout-dashboard", "link", "lock", "log-in", "log-out",
        "mail", "menu", "moon", "pencil", "plug", "plus", "radar", "refresh-cw", "rotate-ccw",
        "search", "search-x", "send", "server", "shield", "ship-wheel", "sun", "trash-2",
        "triangle-alert", "unplug", "upload", "webhook", "wrench", "x", "columns-3", "download",
        "tag", "users", "user-plus",
    }
)  # fmt: skip
# Lucide draws with strokes; the attributes of its <svg> root move to each symbol, so that an
# icon draws right whatever stylesheet (or none) the page has.
STROKE = (
    ' fill="none" stroke="currentColor" stroke-width="2"'
    ' stroke-linecap="round" stroke-linejoin="round"'
)
OUT = Path(__file__).resolve().parent.parent / "static" / "vendor" / "lucide" / "sprite.svg"


def symbol(name: str, source: str) -> str:
    body = re.search(r"<svg[^>]*>(.*)</svg>", source, re.S).group(1)
    body = " ".join(line.strip() for line in body.strip().splitlines())
    return f'<symbol id="{name}" viewBox="0 0 24 24"{STROKE}>{body}</symbol>'


def main(folder: str) -> None:
    icons = Path(folder)
    symbols = [symbol(name, (icons / f"{name}.svg").read_text()) for name in ICONS]
    OUT.write_text(
        "<!-- lucide-static v1.62.0, ISC licence: https://lucide.dev/license -->\n"
        '<svg xmlns="http://www.w3.org/2000/svg">\n' + "\n".join(symbols) + "\n</svg>\n"
    )
    print(f"{len(symbols)} icons -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "package/icons")
