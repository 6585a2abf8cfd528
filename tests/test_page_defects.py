"""Defects a user saw on the connection, add, import and credential pages, each fixed here."""

import logging
import os
from datetime import timedelta
from io import StringIO

import pytest
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils import timezone

from connections import lifecycle
from connections.choices import Status, Trigger
from connections.management.commands import demo
from connections.models import Connection, ConnectionTransition
from connections.models.collected import ProbeResult
from connections.probing.probes import ProbeOutcome
from credentials.models import Credential
from tests.services import require_binary

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def detail(client, connection) -> str:
    response = client.get(reverse("connections:detail", args=[connection.pk]))
    assert response.status_code == 200
    return response.content.decode()


def facts(body: str, css_class: str) -> str:
    """The text of one ``<dd class=…>`` of the facts list."""
    start = body.index(f'<dd class="{css_class}">')
    return body[start : body.index("</dd>", start)]


# --- the probe summary and the results list read the same data ---------------------------------


def test_a_connection_added_unreachable_shows_no_probe_beside_no_results(owner, dead_url):
    """The add form's check writes the row's last-probe fields but no result: the page used to
    say "Last probe … ok/failed" above "No probe results yet"."""
    candidate = lifecycle.prepare_manual_connection(
        name="added", kind="http", url=f"{dead_url}/x", user=owner
    )
    outcome = ProbeOutcome(ok=True, latency_ms=3.0, status_code=200)
    connection = lifecycle.insert_manual_connection(candidate, outcome, user=owner)
    assert connection.last_probe_at is not None and not connection.probe_results.exists()
    body = detail(signed_in(owner), connection)
    assert "No probe results yet" in body
    assert "none yet" in facts(body, "last-probe") and "ok" not in facts(body, "last-probe")


def test_the_last_probe_is_the_newest_result_of_the_list(owner, make_connection):
    connection = make_connection(Status.CONNECTED)
    now = timezone.now()
    ProbeResult.objects.create(connection=connection, ok=True, checked_at=now - timedelta(hours=2))
    ProbeResult.objects.create(
        connection=connection,
        ok=False,
        checked_at=now - timedelta(minutes=3),
        error_class="refused",
        error="connection refused",
    )
    # the row's own copy says otherwise (as after a deletion, which does not clear it)
    Connection.objects.filter(pk=connection.pk).update(last_probe_at=now, last_probe_ok=True)
    last = facts(detail(signed_in(owner), connection), "last-probe")
    assert "3 min ago" in last and "failed" in last and "connection refused" in last


# --- what the probes do, per state -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "extra", "says", "never"),
    [
        (Status.NOT_FOUND, {}, "Not probed while Not Found", "every 30 s"),
        (Status.IGNORED, {}, "Not probed while ignored", "every"),
        (Status.MAINTENANCE, {}, "Not probed during maintenance", "every"),
        (Status.DELETED, {}, "Not probed: it is deleted", "every"),
        (Status.DISCONNECTED, {}, "while down", "Retried every"),
        (Status.REGISTERED, {}, "Probed every 30 s; after a failure retried every 5 s", ""),
        (Status.CONNECTED, {"consecutive_failures": 2}, "Retried every 5 s: 2 failed", ""),
        (Status.CONNECTED, {"probe_interval": 3600}, "Probed every 1 h", ""),
    ],
)
def test_the_page_says_what_the_probes_do_in_each_state(
    owner, make_connection, status, extra, says, never
):
    connection = make_connection(status, **extra)
    probing = facts(detail(signed_in(owner), connection), "probing")
    assert says in probing
    if never:
        assert never not in probing


# --- no "0 minutes ago" ----------------------------------------------------------------------


def test_times_just_past_read_just_now_not_zero_minutes(owner, make_connection):
    connection = make_connection(Status.CONNECTED)
    ProbeResult.objects.create(connection=connection, ok=True, checked_at=timezone.now())
    body = detail(signed_in(owner), connection)
    assert "0 minutes" not in body and "0\xa0minutes" not in body and "0 min ago" not in body
    assert "just now" in facts(body, "last-probe")


# --- "leave blank to keep the stored secret" only where a secret is stored ------------------


def test_a_new_credential_is_not_told_to_keep_a_stored_secret(owner):
    client = signed_in(owner)
    for response in (
        client.get(reverse("credentials:add")),
        client.post(reverse("credentials:add"), {"name": "n", "kind": "bearer_token"}),
        client.get(reverse("connections:add")),
        client.post(
            reverse("connections:add"),
            {"kind": "http", "name": "x", "url": "ftp://x", "new_credential_kind": "api_key"},
        ),
    ):
        body = response.content.decode().lower()
        assert "keep the stored" not in body and "blank to keep" not in body, body[:2000]


def test_editing_a_credential_keeps_its_title_and_help_after_an_error(owner):
    credential = Credential(name="token", kind="bearer_token", owner=owner)
    credential.set_secret({"token": "s3cret-value"})
    credential.save()
    client = signed_in(owner)
    url = reverse("credentials:edit", args=[credential.pk])
    assert "blank to keep" in client.get(url).content.decode()
    refused = client.post(url, {"name": "token", "kind": "bearer_token", "endpoints_text": "x"})
    body = refused.content.decode()
    assert refused.status_code == 400
    assert "Edit token" in body and "New credential" not in body and "blank to keep" in body


# --- the kubeconfig import keeps what was pasted ----------------------------------------------

BROKEN_KUBECONFIG = (
    "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'https://k8s.example:6443'}\n"
    "users:\n- name: u\n  user: {token: pasted-token-7c41}\ncontexts: [\n"
)


def test_a_kubeconfig_refused_is_never_sent_back_nor_logged(owner, caplog):
    """The page keeps what was pasted in the browser (see the browser test below); the answer
    itself never carries the document's secrets."""
    caplog.set_level(logging.DEBUG)
    response = signed_in(owner).post(reverse("connections:import"), {"text": BROKEN_KUBECONFIG})
    body = response.content.decode()
    assert response.status_code == 400 and "not valid YAML" in body
    assert "pasted-token-7c41" not in body
    assert 'hx-preserve="true"' in body  # the box htmx keeps as typed
    assert "no-store" in response["Cache-Control"]
    assert all("pasted-token-7c41" not in record.getMessage() for record in caplog.records)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_kubeconfig_refused_stays_in_the_box(live_server, django_user_model):
    chromium = require_binary("chromium")
    django_user_model.objects.create_user("paste", password="pw-paste-2026")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.goto(f"{live_server.url}/accounts/login/?next=/connections/import/")
            page.fill("input[name=username]", "paste")
            page.fill("input[name=password]", "pw-paste-2026")
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.fill("textarea[name=text]", BROKEN_KUBECONFIG)
            page.click("form.stack button[type=submit]")
            page.wait_for_selector("text=not valid YAML")
            assert page.input_value("textarea[name=text]") == BROKEN_KUBECONFIG
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_a_kubeconfig_imported_is_not_shown_back(owner, dead_url):
    document = BROKEN_KUBECONFIG.replace(
        "https://k8s.example:6443", dead_url.replace("http", "https")
    )
    document = document.replace(
        "contexts: [\n", "contexts: [{name: c1, context: {cluster: c, user: u}}]\n"
    )
    response = signed_in(owner).post(reverse("connections:import"), {"text": document})
    assert response.status_code == 200 and "Added" in response.content.decode()
    assert "pasted-token-7c41" not in response.content.decode()


# --- the demo points to the product, not the admin --------------------------------------------


def test_the_demo_points_to_the_connection_table_not_the_admin():
    out = StringIO()
    demo.Command(stdout=out).announce(8, 18080)
    text = out.getvalue()
    assert "the connection table, /connections/" in text and "/admin" not in text
    if "overview" in {p.name for p in get_resolver().url_patterns if hasattr(p, "name")}:
        assert "the overview, /" in text


# --- the connection page at 1280 and 800 px ---------------------------------------------------

LONG = "x" * 400
# the elements that stick out of the window and are not inside a scrolling box
OFFENDERS = """[...document.querySelectorAll('body *')].filter(e => {
  if (e.getBoundingClientRect().right <= document.documentElement.clientWidth + 1) return false;
  for (let p = e.parentElement; p; p = p.parentElement)
    if (getComputedStyle(p).overflowX !== 'visible') return false;
  return true;
}).slice(0, 30).map(e => e.tagName + '.' + e.className + ' ' +
  Math.round(e.getBoundingClientRect().width))"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_connection_page_fits_1280_and_800_px(live_server, django_user_model):
    chromium = require_binary("chromium")
    user = django_user_model.objects.create_user("wide", password="pw-wide-2026")
    connection = Connection.objects.create(
        name="n" * 200,
        kind="http",
        url=f"http://127.0.0.1:9/{'path/' * 90}",
        status=Status.NOT_FOUND,
        owner=user,
        metadata={"annotation": LONG, LONG[:90]: "v", "list": [LONG] * 3},
        last_probe_error=LONG,
    )
    ConnectionTransition.objects.create(
        connection=connection,
        to_status=Status.NOT_FOUND,
        trigger=Trigger.USER,
        user=user,
        reason=f"reachability check failed: {LONG}",
    )
    ProbeResult.objects.create(connection=connection, ok=False, error_class="x", error=LONG)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=username]", "wide")
            page.fill("input[name=password]", "pw-wide-2026")
            with page.expect_navigation():
                page.click("button[type=submit]")
            for width in (1280, 800):
                page.set_viewport_size({"width": width, "height": 900})
                for path in (
                    reverse("connections:detail", args=[connection.pk]),
                    reverse("connections:edit", args=[connection.pk]),
                ):
                    page.goto(f"{live_server.url}{path}")
                    wide = page.evaluate(
                        "document.documentElement.scrollWidth - "
                        "document.documentElement.clientWidth"
                    )
                    offenders = page.evaluate(OFFENDERS) if wide > 0 else []
                    assert wide <= 0, f"{path} is {wide} px wider than {width} px: {offenders}"
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
