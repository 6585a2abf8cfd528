"""A newcomer's first hour, in a real browser (Playwright driving Debian's Chromium against
live_server), through the UI only: sign in with the form, add connections (one up, one down),
import a kubeconfig, make an environment and share it, add a webhook channel and a maintenance
window, and watch a connection go Disconnected and back without a reload. The ORM only checks
what the steps did.

Every page shown is checked as it is shown: axe-core (static/vendor/axe-core) with no serious or
critical violation, no horizontal overflow, no console error or uncaught exception, no answer of
4xx/5xx, no request to a host other than the live server (aborted, so none leaves), no
"undefined", "None", "NaN" or "[object Object]" among the words on the page, and no field
inside two labels (its accessible name is then both run together). The walk runs at
1440×900 in the light scheme and at 390×844 in the dark one; each then visits the pages it saw
again in the other scheme, so all four get the same checks without four walks. Every finding is
listed at once (and in artifacts/first-hour-report-<variant>.txt), with a screenshot of each page
that has one (and of where a walk stopped) in artifacts/first-hour/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings as django_settings
from django.utils import timezone

from connections.choices import Status
from connections.models import Connection
from environments.models import Environment, EnvironmentMembership
from maintenance.models import Window
from notifications.models import Channel
from tests.kube_api import FakeKubernetesAPI

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
SHOTS = ARTIFACTS / "first-hour"
AXE = ROOT / "static" / "vendor" / "axe-core" / "axe.min.js"
STEP_TIMEOUT_MS = 15_000
KUBE_TOKEN = "first-hour-kube-token-7c1e"

# axe-core's findings of the impacts tests/test_pages_a11y.py blocks on
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 6).map(n => n.target.join(' ') + '  '
        + n.html.replace(/\\s+/g, ' ').slice(0, 120)),
    }));
}"""

OVERFLOW = """() => document.documentElement.scrollWidth > window.innerWidth + 1
  ? [...document.querySelectorAll('body *')]
      .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
      .filter(e => !e.parentElement
        || e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
      .slice(0, 5)
      .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
        + (e.classList.length ? '.' + [...e.classList].join('.') : '')
        + ' (right edge ' + Math.round(e.getBoundingClientRect().right) + ' px of '
        + window.innerWidth + ')')
  : []"""

# A value the templates or scripts printed instead of text: the words as the reader sees them
# (innerText), then each visible element holding them, with its whole text.
LEAKED_WORDS = r"\b(undefined|None|NaN)\b|\[object Object\]"
LEAKED = """(pattern) => {
  const words = new RegExp(pattern);
  if (!words.test(document.body.innerText)) return [];
  const hits = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node && hits.length < 8; node = walker.nextNode()) {
    const element = node.parentElement;
    if (!words.test(node.textContent) || !element || !element.checkVisibility()) continue;
    hits.push({
      where: element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')
        + (element.classList.length ? '.' + [...element.classList].join('.') : ''),
      text: element.innerText.replace(/\\s+/g, ' ').trim().slice(0, 160),
    });
  }
  return hits.length ? hits : [{where: 'body', text: '(in innerText, in no one text node)'}];
}"""
# No copy says "None" on purpose (the empty lists say what is missing in words), so every
# "None" on a page is a leaked value: "since None", "(token, None)", a lone "None.".
DELIBERATE_NONE: list[re.Pattern] = []


# A field inside two <label>s (templates/_field.html wraps a whole radio or checkbox list in one):
# its accessible name runs both together ("Kind One-off Recurring" for the One-off radio).
DOUBLY_LABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.labels && e.labels.length > 1)
  .map(e => (e.id ? '#' + e.id : e.name) + ' labelled '
    + [...e.labels].map(l => '"' + l.innerText.replace(/\\s+/g, ' ').trim().slice(0, 60) + '"')
      .join(' and '))"""


@dataclass(frozen=True)
class Variant:
    width: int
    height: int
    scheme: str  # the walk's colour scheme
    recheck: str  # the scheme the pages it saw are visited again in

    @property
    def name(self) -> str:
        return f"{self.width}-{self.scheme}"


VARIANTS = [Variant(1440, 900, "light", "dark"), Variant(390, 844, "dark", "light")]


class Inspector:
    """Watches browser contexts for what no page may do, and checks each page shown.

    Requests to another host are aborted and recorded; console errors, uncaught exceptions and
    answers of 4xx/5xx are recorded against the page on screen; ``check`` adds axe-core, overflow
    and leaked-value findings and remembers the URL (when it was a GET) for the re-check."""

    def __init__(self, origin: str, size: str, scheme: str):
        self.origin = origin
        self.size = size  # "1440×900"
        self.scheme = scheme  # changed for the re-check
        self.findings: list[tuple[str, str]] = []  # (where — what, size and scheme)
        self.where = "(no page yet)"  # the page on screen, named by the walk
        # path -> (what, anonymous) of each page shown after a GET, for the re-check; a page
        # shown again keeps its place and takes its latest name
        self.visited: dict[str, tuple[str, bool]] = {}
        self.step = ""  # the walk's step, for a walk that stops
        self.methods: dict[object, str] = {}  # page -> method of the document it shows
        self.shown = 0  # findings up to the last screenshot

    def watch(self, context) -> None:
        context.route(lambda url: not self.ours(url), self._abort)
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)
        context.on("page", lambda page: page.on("websocket", self._on_websocket))

    @property
    def variant(self) -> str:
        return f"{self.size} {self.scheme}"

    def ours(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True
        return f"{parts.scheme}://{parts.netloc}" == self.origin

    def add(self, kind: str, text: str) -> None:
        self.findings.append((f"{self.where} — {kind}: {text}", self.variant))

    def _abort(self, route) -> None:
        request = route.request
        self.add("request to another host", f"{request.method} {request.url}")
        route.abort()

    def _on_request(self, request) -> None:
        if request.is_navigation_request() and request.frame.parent_frame is None:
            self.methods[request.frame.page] = request.method

    def _on_response(self, response) -> None:
        if response.status >= 400 and self.ours(response.url):
            request = response.request
            path = urlsplit(response.url).path
            self.add(f"answered {response.status}", f"{request.method} {path}")

    def _on_console(self, message) -> None:
        if message.type == "error":
            location = (message.location or {}).get("url", "")
            self.add("console error", f"{message.text} ({location})" if location else message.text)

    def _on_web_error(self, error) -> None:
        self.add(
            "uncaught exception", f"{error.error} (in {error.page.url if error.page else '?'})"
        )

    def _on_websocket(self, socket) -> None:
        if not self.ours(socket.url.replace("ws", "http", 1)):
            self.add("websocket to another host", socket.url)

    def check(self, page, what: str) -> None:
        """Everything a page shown must hold, collected (the walk goes on); a page with a
        finding is kept as a screenshot in artifacts/first-hour/."""
        page.wait_for_load_state("load")
        path = page.url[len(self.origin) :] if page.url.startswith(self.origin) else page.url
        self.where = f"{what} ({path})"
        if self.methods.get(page, "GET") == "GET":
            cookies = {cookie["name"] for cookie in page.context.cookies(self.origin)}
            self.visited[path] = (what, django_settings.SESSION_COOKIE_NAME not in cookies)
        for element in page.evaluate(OVERFLOW):
            self.add("horizontal overflow", element)
        for hit in page.evaluate(LEAKED, LEAKED_WORDS):
            if not any(copy.fullmatch(hit["text"]) for copy in DELIBERATE_NONE):
                self.add("a leaked value on the page", f'{hit["where"]}: "{hit["text"]}"')
        for labelled in page.evaluate(DOUBLY_LABELLED):
            self.add("a field with two labels", labelled)
        if not page.evaluate("typeof window.axe === 'object'"):
            page.add_script_tag(path=str(AXE))
        for violation in page.evaluate(RUN_AXE):
            nodes = "; ".join(violation["nodes"])
            self.add(
                f"axe {violation['impact']} {violation['id']}", f"{violation['help']} — {nodes}"
            )
        if len(self.findings) > self.shown:  # this page's, or late ones of the page before
            self.shown = len(self.findings)
            slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")
            self.screenshot(page, f"{self.size.replace('×', 'x')}-{self.scheme}-{slug}")

    @staticmethod
    def screenshot(page, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def report(self) -> str:
        """One line a finding, with the sizes and schemes it was seen in."""
        seen: dict[str, list[str]] = {}
        for finding, variant in self.findings:
            variants = seen.setdefault(finding, [])
            if variant not in variants:
                variants.append(variant)
        return "\n".join(f"[{', '.join(v)}] {finding}" for finding, v in seen.items())


def expect_message(page, text: str) -> None:
    """The page's message (templates/_messages.html) saying ``text``."""
    page.locator("#messages .message", has_text=text).first.wait_for()


def field(scope, label: str):
    """The form field labelled ``label``: its label's text starts with it, then at most the
    required mark and the help text (templates/_field.html)."""
    return scope.get_by_label(re.compile(rf"^\s*{re.escape(label)}(\s*\*)?(\s|$)"))


def nav(page, name: str) -> None:
    """Follows a link of the main navigation."""
    with page.expect_navigation():
        page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def submit(page, button) -> None:
    """Presses a submit button and waits for the page it leads to."""
    with page.expect_navigation():
        button.click()


@pytest.fixture
def kube_api():
    """The tests' Kubernetes API stand-in (tests/kube_api.py) on loopback, one admin token."""
    with FakeKubernetesAPI(tokens={KUBE_TOKEN: "admin"}) as api:
        api.add_service("default", "web", {"app": "web"}, [80])
        yield api


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.name}+{v.recheck}")
def test_a_newcomers_first_hour_through_the_ui(
    variant,
    live_server,
    browser,
    settings,
    django_user_model,
    http_endpoint,
    dead_url,
    kube_api,
    receiver,
):
    # "Probe now" twice within seconds is the step below; the floor between probes is
    # the product's guard against hammering, not what is walked here
    settings.PROBE_NOW_MIN_SECONDS = 0
    nora = django_user_model.objects.create_user(
        "nora", password="pw-nora-first-hour", first_name="Nora", last_name="Newcomer"
    )
    django_user_model.objects.create_user(
        "ben", password="pw-ben-first-hour", first_name="Ben", last_name="Reviewer"
    )
    base = live_server.url
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    inspector = Inspector(origin, f"{variant.width}×{variant.height}", variant.scheme)
    context = new_context(browser, inspector, variant, variant.scheme)
    native_dialogs: list[str] = []
    context.on("dialog", lambda d: (native_dialogs.append(d.message), d.dismiss()))
    page = context.new_page()
    failure = None
    try:
        walk(page, inspector, base, http_endpoint, dead_url, kube_api, receiver, nora)
        assert native_dialogs == [], f"the browser's own dialogs were opened: {native_dialogs}"
        recheck(page, inspector, base, browser, variant)
    except Exception as exc:  # the findings so far still belong in the report
        failure = exc
        for n, open_page in enumerate(context.pages):
            inspector.screenshot(open_page, f"{variant.name}-stopped-{n}")
    finally:
        context.close()
    ARTIFACTS.mkdir(exist_ok=True)
    text = inspector.report()
    (ARTIFACTS / f"first-hour-report-{variant.name}.txt").write_text(text + "\n")
    if failure is not None:
        raise AssertionError(
            f"The walk stopped at {inspector.step!r}: {failure}\n\n"
            f"Findings until then:\n{text or '(none)'}"
        ) from failure
    if inspector.findings:
        pytest.fail(f"What the first hour must not show:\n{text}", False)


def new_context(browser, inspector: Inspector, variant: Variant, scheme: str):
    context = browser.new_context(
        viewport={"width": variant.width, "height": variant.height}, color_scheme=scheme
    )
    context.set_default_timeout(STEP_TIMEOUT_MS)
    inspector.watch(context)
    return context


def recheck(page, inspector: Inspector, base: str, browser, variant: Variant) -> None:
    """The pages the walk saw, again in the other colour scheme at the same size: signed in
    in the walk's own tab, the sign-in page in a context of its own (no session)."""
    inspector.scheme = variant.recheck
    page.emulate_media(color_scheme=variant.recheck)
    anonymous = None
    for path, (what, signed_out) in list(inspector.visited.items()):
        if signed_out:
            anonymous = anonymous or new_context(browser, inspector, variant, variant.recheck)
            shown = anonymous.pages[0] if anonymous.pages else anonymous.new_page()
        else:
            shown = page
        shown.goto(base + path)
        assert shown.url == base + path, f"{path} led to {shown.url} on the re-check"
        inspector.check(shown, what)
    if anonymous is not None:
        anonymous.close()


@dataclass
class Walk:
    """One newcomer's session: the tab, the inspector checking each page, the live server."""

    page: object
    inspector: Inspector
    base: str

    def check(self, what: str, page=None) -> None:
        self.inspector.check(page or self.page, what)

    def go(self, link: str) -> None:
        """Follows a link of the page (a button-looking one too), as a reader would."""
        with self.page.expect_navigation():
            self.page.get_by_role("link", name=link, exact=True).click()


def walk(page, inspector, base, http_endpoint, dead_url, kube_api, receiver, nora) -> None:
    me = Walk(page, inspector, base)
    steps = [
        ("1. sign in", lambda: sign_in_through_the_form(me)),
        ("2. add connections", lambda: add_two_connections(me, http_endpoint, dead_url, nora)),
        ("3. import a kubeconfig", lambda: import_a_kubeconfig(me, kube_api)),
        ("4. share an environment", lambda: share_an_environment(me)),
        ("5. a channel and a window", lambda: add_a_channel_and_a_window(me, receiver)),
        ("6. watch a state change", lambda: watch_a_state_change(me, http_endpoint)),
    ]
    for name, step in steps:
        inspector.step = name
        step()
    inspector.step = "the re-check"


def sign_in_through_the_form(me: Walk) -> None:
    """The front door sends a stranger to the sign-in form, which leads back to it."""
    page = me.page
    page.goto(me.base + "/")
    page.wait_for_url("**/accounts/login/**")
    me.check("sign-in")
    field(page, "Username").fill("nora")
    field(page, "Password").fill("pw-nora-first-hour")
    submit(page, page.locator("form:has(input[name=password]) [type=submit]").first)
    assert urlsplit(page.url).path == "/", page.url
    me.check("overview")


def add_two_connections(me: Walk, http_endpoint, dead_url, nora) -> None:
    """An endpoint that answers is registered; one where nothing listens is Not Found."""
    page = me.page
    nav(page, "Connections")
    me.check("connections")
    me.go("Add connection")
    me.check("add connection")
    field(page, "Kind").select_option("http")
    field(page, "Name").fill("orders-api")
    field(page, "URL").fill(http_endpoint.url)
    field(page, "Failure threshold").fill("2")  # the least: two failed probes disconnect
    submit(page, page.get_by_role("button", name="Add and check"))
    expect_message(page, "'orders-api' is reachable: registered.")
    me.check("connection, just added")
    orders = Connection.objects.get(name="orders-api")
    assert (orders.status, orders.owner, orders.failure_threshold) == (
        Status.REGISTERED,
        nora,
        2,
    )

    nav(page, "Connections")
    me.go("Add connection")
    field(page, "Kind").select_option("http")
    field(page, "Name").fill("legacy-billing")
    field(page, "URL").fill(dead_url)
    submit(page, page.get_by_role("button", name="Add and check"))
    expect_message(page, "'legacy-billing' could not be reached")
    me.check("connection, down when added")
    assert Connection.objects.get(name="legacy-billing").status == Status.NOT_FOUND


def import_a_kubeconfig(me: Walk, kube_api) -> None:
    """The pasted kubeconfig's cluster becomes a connection, and the box is emptied."""
    page = me.page
    nav(page, "Connections")
    me.go("Import kubeconfig")
    me.check("import kubeconfig")
    kubeconfig = yaml.safe_dump(kube_api.kubeconfig(KUBE_TOKEN, context="lab"))
    page.locator("#import-page textarea").fill(kubeconfig)
    page.get_by_role("button", name="Import").click()  # htmx swaps the section
    page.locator("#import-page .report", has_text="Added").wait_for()
    page.wait_for_function("document.querySelector('#import-page textarea').value === ''")
    assert KUBE_TOKEN not in page.content()
    me.check("import kubeconfig, imported")
    cluster = Connection.objects.get(kind="kubernetes")
    assert cluster.status == Status.REGISTERED, cluster.status
    assert kube_api.requests, "the cluster was never asked"


def share_an_environment(me: Walk) -> None:
    """A new environment, ben added to it as an editor, orders-api assigned to it."""
    page = me.page
    nav(page, "Environments")
    me.check("environments")
    me.go("New environment")
    me.check("new environment")
    field(page, "Name").fill("payments")
    field(page, "Description").fill("What takes the money")
    submit(page, page.get_by_role("button", name="Save"))
    expect_message(page, "Environment 'payments' saved.")
    payments = Environment.objects.get(name="payments")
    if urlsplit(page.url).path != f"/environments/{payments.pk}/":  # saved onto the list
        me.check("environments, one")
        me.go("payments")
    me.check("environment, new")

    page.locator("#member-user-search").fill("ben")  # the picker searches as one types
    page.locator("#member-user option", has_text="ben").wait_for(state="attached")
    page.locator("#member-user").select_option(label="ben — Ben Reviewer")
    field(page, "Role").select_option("editor")
    submit(page, page.get_by_role("button", name="Add member"))
    expect_message(page, "ben is a")
    assert EnvironmentMembership.objects.filter(
        environment=payments, user__username="ben", role="editor"
    ).exists()

    orders = Connection.objects.get(name="orders-api")
    page.locator("#assign-connections-search").fill("orders")
    page.locator("#assign-connections option", has_text="orders-api").wait_for(state="attached")
    page.locator("#assign-connections").select_option(value=str(orders.pk))
    submit(page, page.get_by_role("button", name="Assign"))
    expect_message(page, "Assigned to 'payments'")
    page.locator(f"#table-region tr[data-id='{orders.pk}']").wait_for()
    me.check("environment, shared, one connection")
    assert list(payments.connections.values_list("name", flat=True)) == ["orders-api"]


def add_a_channel_and_a_window(me: Walk, receiver) -> None:
    """A webhook channel of the environment to a local receiver (its signed test message
    arrives), and a maintenance window over the environment for tomorrow night."""
    page = me.page
    payments = Environment.objects.get(name="payments")
    nav(page, "Notifications")
    me.check("notification center")
    me.go("Channels")
    me.check("channels")
    me.go("New channel")
    me.check("new channel")
    field(page, "Name").fill("payments-hook")
    field(page, "Kind").select_option("webhook")
    field(page, "Destination").fill(receiver.url)
    field(page, "Environment").select_option(label="payments")
    submit(page, page.get_by_role("button", name="Create channel"))
    me.check("channel created, its secret")
    receiver.secret = field(page, "Signing secret").input_value()  # shown this once
    assert receiver.secret
    me.go("Go to the channel")
    submit(page, page.get_by_role("button", name="Send test"))
    expect_message(page, "Test sent")
    me.check("channel, tested")
    assert Channel.objects.get(name="payments-hook").environment == payments
    assert [r["signed"] for r in receiver.received] == [True], receiver.received

    nav(page, "Maintenance")
    me.check("maintenance windows")
    me.go("New window")
    me.check("new maintenance window")
    tomorrow = (timezone.now() + timedelta(days=1)).date()
    field(page, "Name").fill("database upgrade")
    page.get_by_role("radio", name="One-off").check()
    field(page, "Timezone").fill("UTC")
    field(page, "Starts (one-off)").fill(f"{tomorrow:%Y-%m-%d}T02:00")
    field(page, "Ends (one-off)").fill(f"{tomorrow:%Y-%m-%d}T03:30")
    field(page.locator("fieldset", has_text="What it covers"), "payments").check()
    submit(page, page.get_by_role("button", name="Create window"))
    expect_message(page, "Maintenance window 'database upgrade' created.")
    me.check("maintenance window, created")
    window = Window.objects.get(name="database upgrade")
    assert list(window.environments.all()) == [payments]
    assert (window.starts_at.date(), window.starts_at.hour) == (tomorrow, 2)


def watch_a_state_change(me: Walk, http_endpoint) -> None:
    """orders-api connected from its row, then failing and recovering by "Probe now" in a
    second tab: the connections table shows each change by itself, never reloaded."""
    page = me.page
    orders = Connection.objects.get(name="orders-api")
    row = f"#table-region tr[data-id='{orders.pk}']"
    nav(page, "Connections")
    me.check("connections, three")
    page.evaluate("window.firstHourMarker = 'still this document'")
    page.locator(f"#state-btn-{orders.pk}").click()
    page.locator(f"#state-menu-{orders.pk}").get_by_role("menuitem", name="Connect").click()
    page.locator("dialog#confirm").wait_for(state="visible")
    page.locator("#confirm-ok").click()
    page.locator(f"{row}[data-status='connected']").wait_for()

    detail = page.context.new_page()
    detail.goto(f"{me.base}/connections/{orders.pk}/")
    me.check("connection, connected", detail)
    http_endpoint.status = 503
    submit(detail, detail.locator("#probe-now"))  # one failure: below the threshold
    expect_message(detail, "'orders-api' failed the probe")
    assert Connection.objects.get(pk=orders.pk).status == Status.CONNECTED
    submit(detail, detail.locator("#probe-now"))  # the second: disconnected
    expect_message(detail, "'orders-api' failed the probe")
    me.check("connection, disconnected", detail)
    page.bring_to_front()
    page.locator(f"{row}[data-status='disconnected']").wait_for()
    assert "Disconnected" in page.locator(row).inner_text()

    http_endpoint.status = 200
    detail.bring_to_front()
    submit(detail, detail.locator("#probe-now"))
    expect_message(detail, "'orders-api' answered")
    me.check("connection, connected again", detail)
    timeline = detail.locator("ol.timeline").inner_text()
    assert "Disconnected" in timeline and "Connected" in timeline, timeline
    page.bring_to_front()
    page.locator(f"{row}[data-status='connected']").wait_for()
    assert page.evaluate("window.firstHourMarker") == "still this document"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    me.check("connections, after the changes")
    detail.close()
    assert Connection.objects.get(pk=orders.pk).status == Status.CONNECTED


def test_the_inspector_catches_what_the_walk_must_fail_on(live_server, browser):
    """The walk passing means something only if its inspector sees each kind of fault."""
    base = live_server.url
    inspector = Inspector("{0.scheme}://{0.netloc}".format(urlsplit(base)), "1440×900", "light")
    context = new_context(browser, inspector, VARIANTS[0], "light")
    page = context.new_page()
    try:
        page.goto(f"{base}/accounts/login/")
        with page.expect_event("requestfailed"):
            page.evaluate("fetch('http://192.0.2.10/beacon').catch(() => {})")
        with page.expect_console_message():
            page.evaluate("console.error('a self-test error')")
        with page.expect_event("pageerror"):
            page.evaluate("setTimeout(() => { throw new Error('a self-test exception') })")
        page.evaluate(
            """document.querySelector('main').insertAdjacentHTML('beforeend',
               '<p>Owner: None</p><p>Latency: undefined ms</p><p>None.</p>'
               + '<label>Kind <label><input id="twice" type="radio"> One-off</label></label>')"""
        )
        inspector.check(page, "sign-in, broken on purpose")
        page.goto(f"{base}/no-such-page/")
    finally:
        context.close()
    found = inspector.report()
    for expected in (
        "request to another host: GET http://192.0.2.10/beacon",
        "console error: a self-test error",
        "uncaught exception: a self-test exception",
        'a leaked value on the page: p: "Owner: None"',
        'a leaked value on the page: p: "Latency: undefined ms"',
        "answered 404: GET /no-such-page/",
        'a field with two labels: #twice labelled "Kind One-off" and "One-off"',
    ):
        assert expected in found, f"{expected!r} not in:\n{found}"
    assert 'a leaked value on the page: p: "None."' in found  # a lone "None." too
