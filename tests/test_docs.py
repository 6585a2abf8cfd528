"""The docs stay true to the tree: the map of the parts names paths that exist, links lead
somewhere in a clone, nothing is fetched from a CDN, and the README stays a five-minute read."""

import re
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~)")
MAP_HEADING = re.compile(r"^#+\s+map of the parts\s*$", re.IGNORECASE)
# [text](target) and ![alt](target), the text possibly wrapped over lines; an optional title
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
URL = re.compile(r"https?://[^\s)>\]`\"']+")
CDN_HOSTS = {
    "unpkg.com",
    "esm.sh",
    "cdn.skypack.dev",
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "ajax.googleapis.com",
    "code.jquery.com",
}


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The text without its fenced code blocks and inline code (examples, not links)."""
    kept, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def map_entries(page: Path) -> list[str]:
    """The paths named by the code block under each "Map of the parts" heading: the first word
    of each line (indented lines continue the description above them)."""
    entries, lines = [], page.read_text().splitlines()
    for i, line in enumerate(lines):
        if not MAP_HEADING.match(line):
            continue
        start = next(j for j in range(i + 1, len(lines)) if FENCE.match(lines[j].strip()))
        for entry in lines[start + 1 :]:
            if FENCE.match(entry.strip()):
                break
            if entry.strip() and not entry[0].isspace():
                entries.append(entry.split()[0])
    return entries


def test_the_map_of_the_parts_names_only_paths_that_exist():
    named = {page: map_entries(page) for page in PAGES}
    assert named[ROOT / "docs" / "README.md"], "docs/README.md has no 'Map of the parts' block"
    missing = [
        f"{relative(page)}: {entry}"
        for page, entries in named.items()
        for entry in entries
        if not (ROOT / entry).exists() or (entry.endswith("/") and not (ROOT / entry).is_dir())
    ]
    assert not missing, "the map names paths that do not exist:\n" + "\n".join(missing)


def test_every_relative_link_leads_to_a_file_of_the_repository():
    dead = []
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            parts = urlsplit(target)
            if parts.scheme or target.startswith("#"):
                continue
            resolved = (page.parent / parts.path).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                dead.append(f"{relative(page)}: {target}")
    assert not dead, "links that lead nowhere in a clone:\n" + "\n".join(dead)


def test_no_page_links_to_a_cdn():
    found = [
        f"{relative(page)}: {url}"
        for page in PAGES
        for url in URL.findall(page.read_text())
        if "cdn" in (host := urlsplit(url).hostname or "") or host in CDN_HOSTS
    ]
    assert not found, "the docs point at CDNs (vendor the asset instead):\n" + "\n".join(found)


def test_the_readme_is_a_five_minute_read():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_the_readme_gives_the_two_commands_and_the_makefile_has_them():
    readme = README.read_text()
    makefile = (ROOT / "Makefile").read_text()
    for command in ("make run", "make test"):
        assert f"\n{command} " in readme, f"README.md's quick start lost `{command}`"
        target = command.split()[1]
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"Makefile has no `{target}`"
    for option in ("DEMO=1", "PORT=", "HOST="):
        usage = re.search(rf"make run[^`\n]* {option}", readme)
        assert usage, f"README.md no longer shows `make run {option}`"
