"""The dashboard in a real browser: Playwright driving Debian's Chromium against live_server."""

import threading

import pytest
from django.db import connections as db_connections

from connections.models import Connection
from connections.probing.scheduling import run_round
from environments.models import Environment
from tests.chromium import ARTIFACTS, confirm, sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def prober():
    """Starts the background health checks, as the worker would run them, until the test ends."""
    stop = threading.Event()
    threads = []

    def loop():
        try:
            while not stop.is_set():
                run_round()
                stop.wait(0.5)
        finally:
            db_connections.close_all()

    def start():
        threads.append(threading.Thread(target=loop, daemon=True))
        threads[-1].start()

    yield start
    stop.set()
    for thread in threads:
        thread.join(10)


def test_a_day_in_the_dashboard(live_server, browser, prober, django_user_model, http_endpoint):
    user = django_user_model.objects.create_user("ana", password="pw-ana-2026")
    env = Environment.objects.create(name="prod", owner=user)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.dismiss())  # the browser's own: never asked

    page.goto(f"{live_server.url}/connections/")
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", "pw-ana-2026")
    page.click("button[type=submit]")
    page.wait_for_url("**/connections/")

    # add a connection to a real local endpoint: the check runs, it is registered
    page.click("text=Add connection")
    page.select_option("select[name=kind]", "http")
    page.fill("input[name=name]", "orders-api")
    page.fill("input[name=url]", http_endpoint.url)
    page.click("button:has-text('Add and check')")
    page.wait_for_selector("text=is reachable: registered")
    conn = Connection.objects.get(name="orders-api")
    assert conn.status == "registered"
    Connection.objects.filter(pk=conn.pk).update(probe_interval=1, failure_threshold=2)
    prober()  # from here on, the background checks run every half second

    # connect it from the status menu of its row
    page.goto(f"{live_server.url}/connections/")
    row = page.locator(f"tr[data-id='{conn.pk}']")
    row.locator(".state-trigger").click()  # the state menu (a popover)
    page.locator(f"#state-menu-{conn.pk} button:has-text('Connect')").click()
    confirm(page)  # the one confirmation dialog, the page's own
    page.wait_for_selector(f"tr[data-id='{conn.pk}'][data-status='connected']", timeout=15000)

    # the endpoint goes away: the row turns disconnected by itself, no reload
    http_endpoint.shutdown()
    http_endpoint.server_close()
    page.wait_for_selector(f"tr[data-id='{conn.pk}'][data-status='disconnected']", timeout=30000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "table.png"), full_page=True)
    # usable at 800 px: nothing wider than the window
    page.set_viewport_size({"width": 800, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    page.screenshot(path=str(ARTIFACTS / "table-800.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # filter by status: the URL carries the filter
    page.click("#dd-status summary")  # the Status dropdown of checkboxes
    page.check("#dd-status input[value='disconnected']")
    page.wait_for_url("**status=disconnected**")
    assert page.locator("#table-region tbody tr[data-id]").count() == 1

    # bulk-assign to an environment
    page.check(f"tr[data-id='{conn.pk}'] input[name=select]")
    page.select_option("form#bulk select[name=action]", f"assign:{env.pk}")
    page.click("form#bulk button[type=submit]")
    page.wait_for_selector("text=Assigned to 'prod': 1 connection(s)")
    assert list(env.connections.values_list("name", flat=True)) == ["orders-api"]

    page.goto(f"{live_server.url}/connections/{conn.pk}/")
    page.wait_for_selector("text=State timeline")
    page.screenshot(path=str(ARTIFACTS / "connection.png"), full_page=True)
    timeline = page.locator("ol.timeline").inner_text()
    assert "Connected" in timeline and "Disconnected" in timeline


def test_an_environment_goes_into_maintenance_and_back(
    live_server, browser, django_user_model, make_connection
):
    user = django_user_model.objects.create_user("ops", password="pw-ops-2026")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.dismiss())  # the browser's own: never asked
    sign_in(page, live_server, "ops", "pw-ops-2026")

    # create the environment in the UI
    page.click("nav >> text=Environments")
    page.click("text=New environment")
    page.fill("input[name=name]", "payments")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Environment 'payments' saved.")
    env = Environment.objects.get(name="payments")

    # assign three connections from the environment page
    conns = [
        make_connection("connected", name=f"svc-{i}", owner=user, url=f"http://127.0.0.1:1/{i}")
        for i in range(3)
    ]
    page.reload()
    page.select_option("select[name=connection]", [str(c.pk) for c in conns])
    page.click("button:has-text('Assign')")
    page.wait_for_selector("text=Assigned to 'payments'")
    assert env.connections.count() == 3

    # the whole environment into maintenance: the table's bar, "all rows matching the filters"
    page.check("#bulk-all")
    page.select_option("#bulk-action", "transition:maintenance")
    page.click("#bulk-apply")
    confirm(page, "Start maintenance for all 3 connections matching the filters?")
    page.wait_for_selector("text=Moved to Maintenance: 3 connection(s)")
    for conn in conns:
        page.wait_for_selector(f"tr[data-id='{conn.pk}'][data-status='maintenance']")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "environment.png"), full_page=True)

    # and out again: each returns to where it was
    page.check("#bulk-all")
    page.select_option("#bulk-action", "transition:resume")
    page.click("#bulk-apply")
    confirm(page)
    page.wait_for_selector("text=Ended maintenance: 3 connection(s)")
    for conn in conns:
        page.wait_for_selector(f"tr[data-id='{conn.pk}'][data-status='connected']")
    assert set(Connection.objects.values_list("status", flat=True)) == {"connected"}


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: me
  user: {token: PASTED-TOKEN-9f2c}
contexts:
- name: lab
  context: {cluster: lab, user: me}
current-context: lab
"""


def test_an_imported_kubeconfig_leaves_the_box_empty(live_server, browser, django_user_model):
    """The pasted tokens do not stay on the page once imported (and no script fails)."""
    django_user_model.objects.create_user("kim", password="pw-kim-2026")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, live_server, "kim", "pw-kim-2026", then="/connections/import/")
    page.fill("#import-page textarea", KUBECONFIG)
    page.click("#import-page button[type=submit]")
    page.wait_for_selector("#import-page .report >> text=Added")
    page.wait_for_function("document.querySelector('#import-page textarea').value === ''")
    assert "PASTED-TOKEN-9f2c" not in page.content()
    assert errors == []
    assert Connection.objects.filter(kind="kubernetes").count() == 1


def test_the_api_pages_load_nothing_from_another_host(live_server, browser, django_user_model):
    """The API root, Swagger UI and ReDoc in a real browser: everything loaded (scripts,
    styles, fonts, images) comes from the server itself, and the reference draws."""
    from urllib.parse import urlsplit

    django_user_model.objects.create_user("dev", password="pw-dev-2026")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    hosts, errors = set(), []
    # what reached the network: a fetch the page's policy refuses never leaves the browser
    page.on("response", lambda r: r.url.startswith("http") and hosts.add(urlsplit(r.url).netloc))
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, live_server, "dev", "pw-dev-2026", then="/api/")
    page.wait_for_selector("#api-root a[href='/api/docs/']")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock")
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector("#redoc-container h1")
    assert hosts == {urlsplit(live_server.url).netloc}, hosts
    assert errors == []


def test_every_destructive_action_asks_in_the_one_dialog(live_server, browser, django_user_model):
    """Single-row and bulk actions ask alike: the page's own dialog (Cancel focused, the
    action's word on a red OK), never the browser's confirm()."""
    from credentials.models import Credential

    user = django_user_model.objects.create_user("lee", password="pw-lee-2026")
    credential = Credential(name="old-token", kind="bearer_token", owner=user)
    credential.set_secret({"token": "x"})
    credential.save()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    native = []
    page.on("dialog", lambda dialog: (native.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_server, "lee", "pw-lee-2026", then="/credentials/")
    page.click(f"tr[data-id='{credential.pk}'] button:has-text('Delete')")
    dialog = page.locator("dialog#confirm")
    dialog.wait_for(state="visible")
    assert page.inner_text("#confirm-ok") == "Delete"
    assert "danger" in page.get_attribute("#confirm-ok", "class")
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.keyboard.press("Escape")  # cancelled: nothing happens
    dialog.wait_for(state="hidden")
    assert Credential.objects.filter(pk=credential.pk).exists()
    page.click(f"tr[data-id='{credential.pk}'] button:has-text('Delete')")
    confirm(page, "Delete the credential 'old-token'? Connections using it lose it.")
    page.wait_for_selector(f"tr[data-id='{credential.pk}']", state="detached")
    assert not Credential.objects.filter(pk=credential.pk).exists()
    assert native == []
