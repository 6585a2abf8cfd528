"""Every page in a real browser (Debian's Chromium), light and dark, at 1280 and 800 px:
a full-page screenshot in artifacts/screenshots/, axe-core (vendored in static/vendor/axe-core/)
with no serious or critical violation, no horizontal overflow, no console error, no missing
static file. The pages come from the URL patterns (tests/browser_pages.py); the test lists every
finding at once and writes the same report to artifacts/a11y-report.txt.

And the keyboard: the sign-in form in Tab order, the connections page starting with a skip link
or the navigation, and a visible focus indicator on everything focusable there.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser_pages import (
    LOCKED_USERNAME,
    PASSWORD,
    USERNAME,
    Page,
    build_world,
    describe,
    inventory,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
REPORT = ARTIFACTS / "a11y-report.txt"
AXE = ROOT / "static" / "vendor" / "axe-core" / "axe.min.js"
THEMES = ("light", "dark")
WIDTHS = (1280, 800)
HEIGHT = 900
# axe on every page at 1280 in both themes and at 800 in light: a run costs ~0.35 s a page on
# the 2-core machine, and colours (the dark theme's findings) do not change with the width
AXE_AT = {(1280, "light"), (1280, "dark"), (800, "light")}
BLOCKING_IMPACTS = ("serious", "critical")
TARGETS_SHOWN = 12  # per rule, per page and variant; the count says how many there are

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map(n => ({
        target: n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : t).join(' '),
        html: n.html.replace(/\\s+/g, ' ').slice(0, 140),
        message: ([...n.any, ...n.all, ...n.none].map(c => c.message)[0] || '')
          .replace(/\\s+/g, ' ').slice(0, 200),
      })),
    }));
}"""

OVERFLOW = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  widest: [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(e => !e.parentElement
      || e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
    .slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
      + (e.classList.length ? '.' + [...e.classList].join('.') : '')
      + ' (right edge ' + Math.round(e.getBoundingClientRect().right) + 'px)'),
})"""


TIMES: dict[str, float] = defaultdict(float)  # seconds spent per phase, for the report


class timed:
    def __init__(self, phase: str):
        self.phase = phase

    def __enter__(self):
        self.started = time.monotonic()

    def __exit__(self, *exc):
        TIMES[self.phase] += time.monotonic() - self.started


@dataclass
class Finding:
    page: str  # slug
    url: str
    variant: str  # "1280 light"
    rule: str  # an axe rule id, or overflow / console-error / missing-static / status
    impact: str
    help: str
    targets: list[dict]  # {target, html, message}


def variant_of(width: int, theme: str) -> str:
    return f"{width} {theme}"


# --- the browser ----------------------------------------------------------------------------


class Recorder:
    """Console errors and failed same-origin static requests of one browser page, by visit."""

    def __init__(self, page, origin: str):
        self.origin = origin
        self.console: list[str] = []
        self.failed: list[str] = []
        self.expected_status_url = ""  # the 404/429 document itself is no failed request
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.console.append(f"uncaught: {error}"))
        page.on("response", self.on_response)
        page.on("requestfailed", self.on_request_failed)

    def reset(self, expected_status_url: str = "") -> None:
        self.console, self.failed = [], []
        self.expected_status_url = expected_status_url

    def on_console(self, message) -> None:
        if message.type != "error":
            return
        location = (message.location or {}).get("url", "")
        if (
            message.text.startswith("Failed to load resource")
            and self.expected_status_url
            and location.split("?")[0] == self.expected_status_url
        ):
            return  # the browser's note of the 404/429 the page is meant to answer
        self.console.append(f"{message.text} ({location})" if location else message.text)

    def static(self, url: str) -> bool:
        parts = urlsplit(url)
        same = f"{parts.scheme}://{parts.netloc}" == self.origin
        return same and (parts.path.startswith("/static/") or parts.path == "/favicon.ico")

    def on_response(self, response) -> None:
        if response.status >= 400 and self.static(response.url):
            self.failed.append(f"{response.status} {urlsplit(response.url).path}")

    def on_request_failed(self, request) -> None:
        # net::ERR_ABORTED: cancelled by the next navigation (the sign-in loop), not missing
        if self.static(request.url) and "ERR_ABORTED" not in (request.failure or ""):
            self.failed.append(f"{request.failure} {urlsplit(request.url).path}")


def sign_in(page, base: str, username: str, password: str) -> int:
    """Through the real sign-in form; returns the status the form's POST answered."""
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation() as navigation:
        page.locator("form:has(input[name=password]) [type=submit]").first.click()
    response = navigation.value
    return response.status if response else 0


def open_page(page, base: str, target: Page) -> int:
    """Loads the page; returns the status of its document."""
    if target.slug == "locked-out":
        # failed sign-ins of another user name until django-axes answers 429
        for _ in range(8):
            status = sign_in(page, base, LOCKED_USERNAME, "WRONG-password-a11y")
            if status == 429:
                return status
        return status
    response = page.goto(base + target.url, wait_until="load")
    return response.status if response else 0


def audit_variant(page, target: Page, width: int, theme: str, findings: list[Finding]) -> None:
    variant = variant_of(width, theme)

    def add(rule, impact, help_text, targets):
        findings.append(Finding(target.slug, target.url, variant, rule, impact, help_text, targets))

    page.wait_for_timeout(50)  # a frame for the layout at the new width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with timed("screenshots"):
        shot = SCREENSHOTS / f"{target.slug}-{width}-{theme}.png"
        page.screenshot(path=str(shot), full_page=True)
    overflow = page.evaluate(OVERFLOW)
    if overflow["scrollWidth"] > overflow["innerWidth"] + 1:
        add(
            "horizontal-overflow",
            "layout",
            f"the page is {overflow['scrollWidth']} px wide in a {overflow['innerWidth']} px "
            "window",
            [{"target": w, "html": "", "message": ""} for w in overflow["widest"]],
        )
    if (width, theme) in AXE_AT:
        with timed("axe-core"):
            if not page.evaluate("typeof window.axe === 'object'"):
                page.add_script_tag(path=str(AXE))
            violations = page.evaluate(RUN_AXE)
        for violation in violations:
            add(violation["id"], violation["impact"], violation["help"], violation["nodes"])


def audit_theme(browser, base: str, pages: list[Page], theme: str, findings: list[Finding]):
    context = browser.new_context(
        color_scheme=theme, viewport={"width": WIDTHS[0], "height": HEIGHT}, bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    recorder = Recorder(page, origin)
    signed_in = False
    try:
        for target in pages:
            if not target.anonymous and not signed_in:
                status = sign_in(page, base, USERNAME, PASSWORD)
                assert status == 200 and "/accounts/login/" not in page.url, (
                    f"signing in through the form failed ({status}, at {page.url})"
                )
                signed_in = True
            for width in WIDTHS:
                expected_url = base + target.url if target.status != 200 else ""
                recorder.reset(expected_url)
                page.set_viewport_size({"width": width, "height": HEIGHT})
                with timed("page loads"):
                    status = open_page(page, base, target)
                variant = variant_of(width, theme)
                if status != target.status:
                    findings.append(
                        Finding(
                            target.slug,
                            target.url,
                            variant,
                            "status",
                            "broken",
                            f"answered {status}, expected {target.status}",
                            [],
                        )
                    )
                    continue
                audit_variant(page, target, width, theme, findings)
                for text in recorder.console:
                    findings.append(
                        Finding(
                            target.slug, target.url, variant, "console-error", "error", text, []
                        )
                    )
                for text in recorder.failed:
                    findings.append(
                        Finding(
                            target.slug, target.url, variant, "missing-static", "error", text, []
                        )
                    )
    finally:
        context.close()


# --- the report -----------------------------------------------------------------------------


VARIANT_ORDER = [variant_of(width, theme) for width in WIDTHS for theme in THEMES]


def report(findings: list[Finding], pages: list[Page], seconds: float, inventory_text: str) -> str:
    """Page -> theme/width -> rule -> targets; a finding the same in several variants is listed
    once, with all of them."""
    merged: dict[str, dict[tuple, list[str]]] = defaultdict(dict)
    details: dict[tuple, Finding] = {}
    for f in findings:
        nodes = tuple((n["target"], n.get("message", ""), n.get("html", "")) for n in f.targets)
        key = (f.rule, f.impact, f.help, nodes)
        merged[f.page].setdefault(key, []).append(f.variant)
        details[key] = f
    rules: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        rules[f"{f.impact} {f.rule}"].add(f.page)
    axe_variants = ", ".join(
        v for v in VARIANT_ORDER if tuple(v.split()) in {(str(w), t) for w, t in AXE_AT}
    )
    lines = [
        f"{len(findings)} finding(s) on {len(merged)} of {len(pages)} page(s); each page in "
        f"{', '.join(VARIANT_ORDER)} (axe-core at {axe_variants}); {seconds:.0f} s "
        f"({', '.join(f'{phase} {spent:.0f} s' for phase, spent in TIMES.items())}).",
    ]
    if rules:
        lines.append("By rule:")
        lines += [
            f"  {rule}: {len(slugs)} page(s): {', '.join(sorted(slugs))}"
            for rule, slugs in sorted(rules.items())
        ]
    order = {page.slug: i for i, page in enumerate(pages)}
    urls = {page.slug: page.url for page in pages}
    for slug in sorted(merged, key=lambda s: order.get(s, 0)):
        lines += ["", f"== {slug}  {urls.get(slug, '')}"]
        entries = sorted(
            merged[slug].items(),
            key=lambda item: (VARIANT_ORDER.index(item[1][0]), item[0][0]),
        )
        for key, variants in entries:
            f = details[key]
            shown = sorted(set(variants), key=VARIANT_ORDER.index)
            lines.append(f"  [{', '.join(shown)}] {f.impact} {f.rule}: {f.help}")
            for node in f.targets[:TARGETS_SHOWN]:
                detail = " | ".join(
                    part for part in (node.get("message"), node.get("html")) if part
                )
                lines.append(f"      - {node['target']}" + (f"   {detail}" if detail else ""))
            if len(f.targets) > TARGETS_SHOWN:
                lines.append(f"      (+{len(f.targets) - TARGETS_SHOWN} more)")
    lines += ["", inventory_text]
    return "\n".join(lines)


def test_every_url_pattern_is_a_visited_page_or_excluded_with_its_reason():
    """Without a browser: a new pattern nobody can fill fails here too (the list of pages is
    in artifacts/pages.txt)."""
    inv = inventory(build_world())
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "pages.txt").write_text(describe(inv) + "\n")
    assert not inv.problems, "\n".join(inv.problems)
    visited = {page.key for page in inv.pages}
    for key in ("login", "connections:list", "connections:detail", "environments:detail"):
        assert key in visited, f"{key} is not among the pages visited:\n{describe(inv)}"


def test_every_page_in_both_themes_at_both_widths(live_server, browser, settings):
    settings.AXES_ENABLED = True  # the locked-out page, as production shows it
    settings.AXES_FAILURE_LIMIT = 5
    started = time.monotonic()
    TIMES.clear()
    world = build_world()
    inv = inventory(world)
    assert not inv.problems, "\n".join(inv.problems)
    assert AXE.is_file(), f"axe-core is not vendored at {AXE}"
    findings: list[Finding] = []
    for theme in THEMES:
        audit_theme(browser, live_server.url, inv.pages, theme, findings)
    seconds = time.monotonic() - started
    text = report(findings, inv.pages, seconds, describe(inv))
    ARTIFACTS.mkdir(exist_ok=True)
    REPORT.write_text(text + "\n")
    (ARTIFACTS / "a11y-report.json").write_text(
        json.dumps([asdict(f) for f in findings], indent=1) + "\n"
    )
    if findings:
        pytest.fail(f"Accessibility and layout findings (also in {REPORT}):\n{text}", False)


# --- the keyboard ---------------------------------------------------------------------------

DESCRIBE_ACTIVE = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  return {
    tag: e.tagName.toLowerCase(),
    name: e.getAttribute('name') || '',
    type: e.getAttribute('type') || '',
    href: e.getAttribute('href') || '',
    text: (e.innerText || e.value || '').trim().slice(0, 60),
    inNav: !!e.closest('nav, header, [role=navigation], [role=banner]'),
  };
}"""

FOCUSABLE = (
    "a[href], button, input:not([type=hidden]), select, textarea, summary, "
    "[tabindex]:not([tabindex='-1']), [contenteditable='true']"
)

MARK_FOCUSABLE = """(selector) => {
  const visible = e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && !e.disabled && e.tabIndex >= 0
      && e.checkVisibility({visibilityProperty: true}) && !e.closest('[inert]');
  };
  const ring = e => { const s = getComputedStyle(e);
    return {outline: `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`,
            shadow: s.boxShadow}; };
  const marked = [];
  let next = document.querySelectorAll('[data-a11y-index]').length;
  document.querySelectorAll(selector).forEach(e => {
    if (e.dataset.a11yIndex !== undefined || !visible(e)) return;
    const i = String(next++);
    e.dataset.a11yIndex = i;
    marked.push({index: i, unfocused: ring(e),
      describe: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
        + (e.getAttribute('name') ? `[name=${e.getAttribute('name')}]` : '')
        + (typeof e.className === 'string' && e.className.trim()
           ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
        + ' "' + (e.innerText || e.value || e.getAttribute('aria-label') || '')
           .trim().slice(0, 30) + '"'});
  });
  return marked;
}"""

FOCUSED_RING = """() => {
  const e = document.activeElement;
  if (!e || !e.dataset || e.dataset.a11yIndex === undefined) return null;
  const s = getComputedStyle(e);
  const visibleOutline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  return {index: e.dataset.a11yIndex,
          outline: `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`,
          shadow: s.boxShadow, visibleOutline};
}"""


def tab_sequence(page, presses: int) -> list[dict | None]:
    """Where the focus is (an autofocus field, or nothing), then after each Tab."""
    sequence = [page.evaluate(DESCRIBE_ACTIVE)]
    for _ in range(presses):
        page.keyboard.press("Tab")
        sequence.append(page.evaluate(DESCRIBE_ACTIVE))
    return sequence


def test_the_keyboard_reaches_everything_and_shows_where_it_is(live_server, browser):
    world = build_world()
    context = browser.new_context(viewport={"width": 1280, "height": HEIGHT}, bypass_csp=True)
    page = context.new_page()
    problems: list[str] = []
    try:
        # the sign-in form: username, password, submit, in that order
        page.goto(f"{live_server.url}/accounts/login/")
        sequence = tab_sequence(page, 25)

        def role(item):
            if item is None:
                return None
            if item["name"] == "username":
                return "username"
            if item["name"] == "password":
                return "password"
            if item["type"] == "submit" or (item["tag"] == "button" and item["type"] != "button"):
                return "submit"
            return None

        order = [r for r in map(role, sequence) if r]
        deduplicated = [r for i, r in enumerate(order) if r not in order[:i]]
        if deduplicated[:3] != ["username", "password", "submit"]:
            stops = [item and (item["tag"], item["name"] or item["text"]) for item in sequence[:10]]
            problems.append(
                "sign-in page: Tab should reach username, password, submit in that order; it "
                f"reached {deduplicated}; the first stops: {stops}"
            )

        # the connections page: a skip link first, or the navigation
        status = sign_in(page, live_server.url, USERNAME, PASSWORD)
        assert status == 200, f"signing in failed ({status})"
        page.goto(f"{live_server.url}/connections/")
        skip = page.evaluate(
            """() => [...document.querySelectorAll('a[href^="#"]')]
                 .find(a => /skip/i.test(a.textContent)) ? true : false"""
        )
        page.keyboard.press("Tab")
        first = page.evaluate(DESCRIBE_ACTIVE)
        if skip:
            if not first or first["tag"] != "a" or "skip" not in first["text"].lower():
                problems.append(
                    f"connections page: the skip link is not the first Tab stop ({first})"
                )
            else:
                target = first["href"].lstrip("#")
                if not target or not page.evaluate("(id) => !!document.getElementById(id)", target):
                    problems.append(
                        f"connections page: the skip link's target #{target} is missing"
                    )
        elif not first or not first["inNav"]:
            problems.append(
                "connections page: the first Tab stop is neither a skip link nor in the "
                f"header/navigation ({first})"
            )

        # every focusable element on the connections page shows that it has the focus
        page.goto(f"{live_server.url}/connections/")
        marked = {item["index"]: item for item in page.evaluate(MARK_FOCUSABLE, FOCUSABLE)}
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        seen: dict[str, dict] = {}
        for _ in range(len(marked) + 10):
            page.keyboard.press("Tab")
            ring = page.evaluate(FOCUSED_RING)
            if ring is None:
                continue
            if ring["index"] in seen:
                break  # round the page and back
            seen[ring["index"]] = ring
        # then what the closed menus hold: each <details> opened in turn, its new elements
        # focused one by one (after a Tab, so the browser shows focus as for the keyboard)
        tabbed = len(seen)
        for number in range(page.locator("details").count()):
            page.evaluate("(n) => { document.querySelectorAll('details')[n].open = true; }", number)
            inside = page.evaluate(MARK_FOCUSABLE, FOCUSABLE)
            if not inside:
                continue
            marked.update({item["index"]: item for item in inside})
            page.keyboard.press("Tab")
            for item in inside:
                page.evaluate(
                    "(i) => document.querySelector(`[data-a11y-index='${i}']`).focus()",
                    item["index"],
                )
                ring = page.evaluate(FOCUSED_RING)
                if ring is not None and ring["index"] == item["index"]:
                    seen[item["index"]] = ring
        no_ring = []
        for index, ring in seen.items():
            before = marked[index]["unfocused"]
            outline_changed = ring["visibleOutline"] and ring["outline"] != before["outline"]
            shadow_changed = ring["shadow"] != before["shadow"] and ring["shadow"] != "none"
            if not (outline_changed or shadow_changed):
                no_ring.append(f"{marked[index]['describe']} (outline {ring['outline']})")
        if no_ring:
            problems.append(
                "connections page: no visible focus indicator (outline or box-shadow) on "
                f"{len(no_ring)} of {len(seen)} focusable elements:\n    " + "\n    ".join(no_ring)
            )
        if not seen:
            problems.append("connections page: Tab reaches none of its focusable elements")
        unreached = [item["describe"] for index, item in marked.items() if index not in seen]
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "keyboard-report.txt").write_text(
            f"sign-in page, focus then each Tab: {sequence}\n"
            f"connections page, first Tab stop: {first} (skip link present: {skip})\n"
            f"connections page: {len(marked)} focusable elements (with every menu opened), "
            f"{tabbed} reached by Tab, {len(seen) - tabbed} more in menus focused one by one, "
            f"{len(no_ring)} without a focus indicator\n"
            + "".join(f"  not checked (never focused): {item}\n" for item in unreached)
            + "".join(f"  no focus indicator: {item}\n" for item in no_ring)
            + "\n".join(problems)
            + "\n"
        )
    finally:
        context.close()
    assert not problems, "\n".join(problems)
    assert world.connection.pk  # the page had its rows to tab through
