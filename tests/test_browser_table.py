"""The connections table in a real browser (Playwright driving Debian's Chromium against
live_server): menus never clipped, the keyboard, bulk confirmations, filters and chips, and
what survives the live refresh."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from connections.choices import Status
from connections.models import Connection, ProbeResult
from tests.chromium import ARTIFACTS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Every item of the open menu inside the window, and the topmost thing at its centre.
MENU_VISIBLE = """(panel) => {
  const items = [...panel.querySelectorAll('[role="menuitem"]')];
  return items.map((item) => {
    const r = item.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return {
      text: item.textContent.trim(),
      inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight
        && r.width > 0 && r.height > 0,
      onTop: !!hit && (hit === item || item.contains(hit)),
    };
  });
}"""


# Counts the 5 s polls of the table that the gate held back: htmx reads ``window.pollable`` at
# every poll, so wrapping it sees each one.
COUNT_HELD_POLLS = """() => {
  const gate = window.pollable;
  window.heldPolls = 0;
  window.pollable = (visibility) => {
    const open = gate(visibility);
    if (visibility === 'visible' && !open) window.heldPolls += 1;
    return open;
  };
}"""


@pytest.fixture
def signed_in_page(browser, live_server, owner):
    """A page signed in as ``owner`` (by session cookie: no sign-in form, no throttle)."""
    client = Client()
    client.force_login(owner)
    pages = []

    def open_page(width=1280, height=900, script=True):
        context = browser.new_context(
            viewport={"width": width, "height": height}, java_script_enabled=script
        )
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.context.close()


def with_results(connection, n=30, fail_every=7):
    now = timezone.now()
    ProbeResult.objects.bulk_create(
        ProbeResult(
            connection=connection,
            checked_at=now - timedelta(seconds=30 * (n - i)),
            ok=bool(i % fail_every),
            latency_ms=12.5 if i % fail_every else None,
            error_class="" if i % fail_every else "connect",
            error="" if i % fail_every else "Connection refused",
        )
        for i in range(n)
    )
    return connection


def open_menu(page, pk):
    page.click(f"#state-btn-{pk}")
    page.wait_for_selector(f"#state-menu-{pk}:popover-open")
    return page.locator(f"#state-menu-{pk}")


def assert_menu_visible(page, pk, expected=("Edit",)):
    items = open_menu(page, pk).evaluate(MENU_VISIBLE)
    texts = [item["text"] for item in items]
    for text in expected:
        assert text in texts, texts
    assert all(item["inside"] and item["onTop"] for item in items), items
    page.keyboard.press("Escape")
    page.wait_for_selector(f"#state-menu-{pk}:not(:popover-open)", state="attached")


def test_the_state_menu_is_never_clipped(live_server, signed_in_page, make_connection):
    few = [
        with_results(
            make_connection(Status.CONNECTED, name=f"a-{i}", url=f"http://127.0.0.1:819{i}/")
        )
        for i in range(3)
    ]
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/")
    for conn in few:  # a three-row table: the whole menu shows, not only its first item
        assert_menu_visible(page, conn.pk, ("Start maintenance", "Ignore", "Delete", "Edit"))
    ARTIFACTS.mkdir(exist_ok=True)
    open_menu(page, few[-1].pk)
    page.screenshot(path=str(ARTIFACTS / "table-menu.png"))
    page.keyboard.press("Escape")

    # the last row of a long table: the menu opens upwards, above no scrollbar
    many = [make_connection(Status.REGISTERED, name=f"b-{i:02}") for i in range(40)]
    page.goto(f"{live_server.url}/connections/?per_page=50&sort=name")
    last = many[-1]
    page.locator(f"#state-btn-{last.pk}").scroll_into_view_if_needed()
    assert_menu_visible(page, last.pk, ("Connect", "Edit"))
    # one line per row at 1280: every row as high as the first
    heights = page.eval_on_selector_all(
        "#table-region tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
    )
    assert max(heights) - min(heights) <= 1.5, heights  # the last row has no bottom rule
    page.screenshot(path=str(ARTIFACTS / "table-long.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")

    # the connection page, at 1280 and at 800: inside the window, the page no wider
    for width in (1280, 800):
        detail = signed_in_page(width=width)
        detail.goto(f"{live_server.url}/connections/{few[0].pk}/")
        assert_menu_visible(detail, few[0].pk, ("Start maintenance", "Edit"))
        assert detail.evaluate("document.documentElement.scrollWidth <= innerWidth")
        open_menu(detail, few[0].pk)
        detail.screenshot(path=str(ARTIFACTS / f"connection-menu-{width}.png"))


def test_the_table_at_800_px_hides_columns_instead_of_wrapping(
    live_server, signed_in_page, make_connection
):
    for port in (8191, 8192, 8199):
        with_results(
            make_connection(
                Status.CONNECTED,
                name=f"svc-{port}",
                url=f"http://127.0.0.1:{port}/a/rather/long/path/to/a/health/endpoint",
            )
        )
    page = signed_in_page(width=800)
    page.goto(f"{live_server.url}/connections/")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    ports = page.eval_on_selector_all(
        ".url-port",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " const cell = e.closest('td').getBoundingClientRect();"
        " return [e.textContent, r.right <= cell.right + 0.5 && r.width > 0]; })",
    )
    assert sorted(ports) == [[":8191", True], [":8192", True], [":8199", True]]
    heights = page.eval_on_selector_all(
        "#table-region tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
    )
    assert max(heights) < 48, heights
    page.screenshot(path=str(ARTIFACTS / "table-800-new.png"), full_page=True)


def test_the_state_menu_works_from_the_keyboard(live_server, signed_in_page, make_connection):
    conn = make_connection(Status.CONNECTED, name="api")
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/")
    trigger = page.locator(f"#state-btn-{conn.pk}")
    trigger.focus()
    page.keyboard.press("Enter")  # opens, on the first item
    page.wait_for_selector(f"#state-menu-{conn.pk}:popover-open")
    assert trigger.get_attribute("aria-expanded") == "true"
    focused = "document.activeElement.textContent.trim()"
    first = page.evaluate(focused)
    page.keyboard.press("End")
    assert page.evaluate(focused) == "Edit"
    page.keyboard.press("ArrowDown")  # wraps round
    assert page.evaluate(focused) == first
    page.keyboard.press("Escape")  # closes, focus back on the button
    page.wait_for_selector(f"#state-menu-{conn.pk}:not(:popover-open)", state="attached")
    assert page.evaluate("document.activeElement.id") == f"state-btn-{conn.pk}"
    assert trigger.get_attribute("aria-expanded") == "false"
    page.keyboard.press("ArrowDown")
    page.wait_for_selector(f"#state-menu-{conn.pk}:popover-open")
    page.keyboard.press("Tab")  # Tab leaves and closes it
    page.wait_for_selector(f"#state-menu-{conn.pk}:not(:popover-open)", state="attached")
    trigger.focus()
    page.keyboard.press(" ")
    page.wait_for_selector(f"#state-menu-{conn.pk}:popover-open")
    while page.evaluate(focused) != "Start maintenance":
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    # the one confirmation dialog: Cancel has the focus, so Enter alone changes nothing
    page.locator("dialog#confirm").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    assert page.inner_text("#confirm-text") == (
        "api: Take it offline for maintenance? Probes stop."
    )
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # OK
    page.wait_for_selector(f"tr[data-id='{conn.pk}'][data-status='maintenance']")
    assert Connection.objects.get(pk=conn.pk).status == Status.MAINTENANCE
    page.wait_for_selector("text='api' is now Maintenance.")


def test_bulk_delete_of_all_matching_rows_asks_with_the_count(
    live_server, signed_in_page, make_connection
):
    doomed = [make_connection(Status.CONNECTED, kind="prometheus") for _ in range(3)]
    kept = make_connection(Status.CONNECTED, kind="http")
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/?kind=prometheus")
    counter = page.locator("#selection-count")
    page.check(f"#sel-{doomed[0].pk}")
    page.check(f"#sel-{doomed[1].pk}")
    assert counter.inner_text() == "2 selected"
    page.check("#bulk-all")
    assert counter.inner_text() == "All 3 matching rows"
    page.select_option("#bulk-action", "transition:deleted")
    page.click("#bulk-apply")
    dialog = page.locator("dialog#confirm")
    dialog.wait_for(state="visible")
    assert dialog.locator("p").inner_text() == (
        "Delete 3 connections matching the filters? This cannot be undone."
    )
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.keyboard.press("Enter")  # Cancel
    dialog.wait_for(state="hidden")
    assert Connection.objects.filter(status=Status.CONNECTED).count() == 4
    page.click("#bulk-apply")
    dialog.wait_for(state="visible")
    page.click("#confirm-ok")
    page.wait_for_selector("text=Moved to Deleted: 3 connection(s)")
    assert "kind=prometheus" in page.url  # back where the user was
    assert set(Connection.all_objects.filter(status=Status.DELETED)) == set(doomed)
    assert Connection.objects.get(pk=kept.pk).status == Status.CONNECTED
    assert page.locator("#table-region tbody tr[data-id]").count() == 0


def test_a_filter_dropdown_and_its_chip_round_trip(live_server, signed_in_page, make_connection):
    up = make_connection(Status.CONNECTED, name="up")
    down = make_connection(Status.DISCONNECTED, name="down")
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/")
    page.click("#dd-status summary")
    page.check("#dd-status input[value='disconnected']")
    page.wait_for_url("**status=disconnected**")
    page.wait_for_selector(f"tr[data-id='{up.pk}']", state="detached")
    assert page.locator(f"tr[data-id='{down.pk}']").count() == 1
    assert page.locator("#dd-status .dd-count").inner_text().startswith("1")
    page.keyboard.press("Escape")  # closes the dropdown
    assert not page.locator("#dd-status").evaluate("d => d.open")
    chip = page.locator("#filter-chips .chip", has_text="Status: Disconnected")
    chip.locator("a").click()
    page.wait_for_selector(f"tr[data-id='{up.pk}']")
    assert "status=" not in page.url
    assert not page.locator("#dd-status input[value='disconnected']").is_checked()
    assert page.locator("#filter-chips .chip").count() == 0
    # a summary link sets the filter: the form and the chips follow
    page.click("#sum-connected")
    page.wait_for_selector(f"tr[data-id='{down.pk}']", state="detached")
    assert page.locator("#dd-status input[value='connected']").is_checked()
    page.wait_for_selector("#filter-chips .chip:has-text('Status: Connected')")
    page.click("#chips-clear")
    page.wait_for_selector(f"tr[data-id='{down.pk}']")


def test_an_open_menu_a_focused_heartbeat_and_the_selection_survive_the_refresh(
    live_server, signed_in_page, make_connection
):
    conn = with_results(make_connection(Status.CONNECTED, name="api"))
    other = make_connection(Status.REGISTERED, name="web")
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/")
    page.check(f"#sel-{other.pk}")
    page.evaluate("document.getElementById('table-region').dataset.marker = 'first'")
    open_menu(page, conn.pk)
    assert page.evaluate("pollable('visible')") is False
    page.evaluate(COUNT_HELD_POLLS)
    page.wait_for_function("window.heldPolls > 0")  # a refresh was due: it waited
    assert page.evaluate("document.getElementById('table-region').dataset.marker") == "first"
    assert page.locator(f"#state-menu-{conn.pk}").evaluate("m => m.matches(':popover-open')")
    page.keyboard.press("Escape")
    assert page.evaluate("pollable('visible')") is True
    # the heartbeat by keyboard: focus shows the newest result, arrows the older ones
    page.focus(f"#hb-{conn.pk}")
    tip = page.locator("#table-tip")
    tip.wait_for(state="visible")
    assert " ago · " in tip.inner_text()
    page.keyboard.press("Home")
    oldest = tip.inner_text()
    assert oldest.startswith("failed · connect: Connection refused")
    other.name = "web-2"  # a change, so the refresh renders (an unchanged one answers 304)
    other.save()
    page.evaluate("htmx.trigger('#table-region', 'connections-changed')")  # a refresh now
    page.wait_for_function("!document.getElementById('table-region').dataset.marker")
    assert page.evaluate("document.activeElement.id") == f"hb-{conn.pk}"
    assert tip.inner_text() == oldest and tip.is_visible()
    assert page.locator(f"#sel-{other.pk}").is_checked()
    assert page.locator("#selection-count").inner_text() == "1 selected"


def test_the_heartbeat_is_one_element_read_by_pointer_and_keyboard(
    live_server, signed_in_page, make_connection
):
    """A bar is one element: the pointer over its i-th slice, or the arrow keys, show the i-th
    probe's tooltip and mark that tick; leaving it hides both."""
    conn = with_results(make_connection(Status.CONNECTED, name="api"))
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/")
    cell = page.locator(f"tr[data-id='{conn.pk}'] td.col-heartbeat")
    assert cell.evaluate("c => c.querySelectorAll('*').length") <= 5  # span, svg, ≤ 3 paths
    box = page.locator(f"#hb-{conn.pk} svg").bounding_box()
    tip = page.locator("#table-tip")
    slice_ = box["width"] / 30
    # tick 0 failed (i % 7 == 0), tick 1 passed: the oldest on the left
    page.mouse.move(box["x"] + slice_ * 0.5, box["y"] + box["height"] / 2)
    tip.wait_for(state="visible")
    assert tip.inner_text().startswith("failed · connect: Connection refused")
    page.mouse.move(box["x"] + slice_ * 1.5, box["y"] + box["height"] / 2)
    page.wait_for_function("document.getElementById('table-tip').textContent.startsWith('ok')")
    assert "12 ms" in tip.inner_text() or "13 ms" in tip.inner_text()
    mark = page.locator(f"#hb-{conn.pk} .beat-mark")
    assert mark.count() == 1
    assert abs(mark.bounding_box()["x"] - (box["x"] + slice_)) < slice_ / 2
    page.mouse.move(0, 0)
    tip.wait_for(state="hidden")
    assert mark.count() == 0
    # the keyboard: End is the newest, ArrowLeft one older
    page.focus(f"#hb-{conn.pk}")
    tip.wait_for(state="visible")
    newest = tip.inner_text()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "t => document.getElementById('table-tip').textContent !== t", arg=newest
    )
    page.keyboard.press("End")
    page.wait_for_function(
        "t => document.getElementById('table-tip').textContent === t", arg=newest
    )
    page.keyboard.press("Escape")
    tip.wait_for(state="hidden")


def test_sorting_and_paging_leave_the_search_box_and_the_filters_as_they_were(
    live_server, signed_in_page, make_connection
):
    """A header, Next or Last never writes "undefined" in the search box (or the sort): the
    next filter change still finds the rows."""
    for i in range(60):
        make_connection(Status.REGISTERED if i % 2 else Status.CONNECTED, name=f"svc-{i:02}")
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/?per_page=25")
    for control in ("#sort-name", "#page-next", "#page-last", "#sort-name"):
        page.evaluate("document.getElementById('table-region').dataset.marker = 'old'")
        page.click(control)
        page.wait_for_function("!document.getElementById('table-region').dataset.marker")
        assert page.input_value("#filter-q") == ""
        assert "undefined" not in page.url
        assert page.evaluate("document.querySelector('#filters [name=sort]').value") != (
            "undefined"
        )
    page.click("#dd-status summary")
    page.check("#dd-status input[value='connected']")
    page.wait_for_url("**status=connected**")
    page.wait_for_selector("tr[data-status='connected']")
    assert "undefined" not in page.url
    assert page.locator("tr[data-status='registered']").count() == 0
    assert "undefined" not in page.locator("main").inner_text()


def test_a_page_of_an_older_release_reloads_instead_of_swapping_new_markup(
    live_server, signed_in_page, make_connection
):
    """After a deploy a refresh carries markup the page's old scripts may not know: the page
    reloads (and gets this release's scripts) rather than swap it in."""
    conn = make_connection(Status.CONNECTED, name="api")
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/")
    current = page.get_attribute('meta[name="release"]', "content")
    assert current
    page.evaluate(
        "document.querySelector('meta[name=release]').content = 'an-older-release';"
        "window.loadedBefore = true;"
    )
    conn.name = "api-2"  # a change, so the refresh renders
    conn.save()
    page.evaluate("htmx.trigger('#table-region', 'connections-changed')")
    page.wait_for_function("!window.loadedBefore")  # a new document: it reloaded
    page.wait_for_selector(f"#name-{conn.pk}:has-text('api-2')")
    assert page.get_attribute('meta[name="release"]', "content") == current


def test_at_1440_px_names_kinds_and_the_reason_are_readable(
    live_server, signed_in_page, make_connection
):
    """The first-hour complaint: at 1440 px "grafana-dashboards" was cut to "grafana-dashboa…",
    the kind was an icon alone and the reason a dozen characters."""
    conn = make_connection(
        Status.DISCONNECTED,
        name="grafana-dashboards",
        kind="grafana",
        last_probe_ok=False,
        last_probe_class="refused",
        last_probe_error="refused: cannot connect: [Errno 111] Connect call failed",
        url="http://127.0.0.1:18086/",
    )
    page = signed_in_page(width=1440)
    page.goto(f"{live_server.url}/connections/")
    row = page.locator(f"tr[data-id='{conn.pk}']")
    name = row.locator(".col-name a")
    assert name.evaluate("a => a.scrollWidth <= a.clientWidth"), "the name is cut"
    kind = row.locator(".col-kind .kind-label")
    assert kind.is_visible() and kind.inner_text() == "Grafana"
    problem = row.locator(".col-problem .problem > span")
    assert problem.inner_text().startswith("Nothing listens on 127.0.0.1:18086")
    shown = problem.evaluate("s => s.clientWidth")
    assert shown >= 250, f"the reason has {shown} px"


def test_filters_and_the_state_menu_work_without_script(
    live_server, signed_in_page, make_connection
):
    up = make_connection(Status.CONNECTED, name="up")
    down = make_connection(Status.DISCONNECTED, name="down")
    page = signed_in_page(script=False)
    page.goto(f"{live_server.url}/connections/")
    page.click("#dd-status summary")
    page.check("#dd-status input[value='connected']")
    # (Playwright's "no script" still parses <noscript> as text: Enter submits the form)
    page.press("#filter-q", "Enter")
    page.wait_for_url("**status=connected**")
    assert page.locator(f"tr[data-id='{down.pk}']").count() == 0
    assert page.locator("#filter-chips .chip").inner_text() == "Status: Connected"
    page.click(f"#state-btn-{up.pk}")  # the native popover opens without script
    page.click(f"#state-menu-{up.pk} button:has-text('Start maintenance')")
    page.wait_for_selector("text='up' is now Maintenance.")  # back on the filtered page
    assert "status=connected" in page.url
    assert Connection.objects.get(pk=up.pk).status == Status.MAINTENANCE


def test_a_parent_is_found_by_typing_its_name(live_server, signed_in_page, make_connection):
    """The picker: type part of a name, the list narrows (from the server), choose, Add."""
    child = make_connection(Status.CONNECTED, name="checkout-web")
    for i in range(60):  # more than the list shows at first
        make_connection(Status.CONNECTED, name=f"filler-{i:02}")
    parent = make_connection(Status.CONNECTED, name="zz-payments-db")
    page = signed_in_page()
    page.goto(f"{live_server.url}/connections/{child.pk}/")
    assert page.locator(f"#parent-id option[value='{parent.pk}']").count() == 0  # past 50
    page.fill("#parent-id-search", "payments")
    page.wait_for_selector(f"#parent-id option[value='{parent.pk}']")
    assert page.locator("#parent-id option").count() == 1
    page.select_option("#parent-id", str(parent.pk))
    page.click("#dependencies button:has-text('Add')")
    page.wait_for_selector("text='checkout-web' now depends on 'zz-payments-db'.")
    from connections.models import Dependency

    assert list(Dependency.objects.filter(child=child).values_list("parent_id", flat=True)) == [
        parent.pk
    ]


def test_on_a_phone_each_row_is_a_card_with_nothing_cut(
    live_server, signed_in_page, make_connection
):
    """The first-hour complaint: at 390 px names were cut to four letters, URLs to "h…" and
    the first row was below the fold. Now a row is a card: name, state, heartbeat, reason."""
    conn = make_connection(
        Status.DISCONNECTED,
        name="grafana-dashboards-production-eu-west",
        kind="grafana",
        last_probe_ok=False,
        last_probe_class="refused",
        last_probe_error="refused: cannot connect: [Errno 111] Connect call failed",
        url="http://127.0.0.1:18086/",
    )
    with_results(conn)
    Connection.objects.filter(pk=conn.pk).update(uptime_24h=93.3)
    page = signed_in_page(width=390, height=844)
    page.goto(f"{live_server.url}/connections/")
    row = page.locator(f"tr[data-id='{conn.pk}']")
    name = row.locator(".col-name a")
    assert name.inner_text() == "grafana-dashboards-production-eu-west"
    assert name.evaluate("a => a.scrollWidth <= a.clientWidth"), "the name is cut"
    for part in (".col-status .badge", f"#hb-{conn.pk}", ".col-uptime_24h", ".col-problem"):
        assert row.locator(part).first.is_visible(), part
    assert row.locator(".col-uptime_24h").inner_text() == "93.3 %"
    reason = row.locator(".col-problem .problem > span")
    assert reason.inner_text().startswith("Nothing listens on 127.0.0.1:18086")
    assert reason.evaluate("s => s.scrollWidth <= s.clientWidth"), "the reason is cut"
    assert not row.locator(".col-url").is_visible()  # on the connection's page instead
    # the card fits the screen: no sideways scrolling, and it starts above the fold
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert box["y"] < 844
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_column_chooser_shows_a_column_at_once_and_remembers_it(
    live_server, signed_in_page, make_connection, owner
):
    conn = make_connection(Status.CONNECTED, name="api")
    Connection.objects.filter(pk=conn.pk).update(uptime_30d=99.0)
    page = signed_in_page(width=1440)
    page.goto(f"{live_server.url}/connections/")
    cell = page.locator(f"tr[data-id='{conn.pk}'] .col-uptime_30d")
    assert not cell.is_visible()
    page.click("#dd-columns summary")
    with page.expect_response("**/connections/columns/") as answer:
        page.check("#show-uptime_30d")
    assert answer.value.status == 204
    assert cell.is_visible() and cell.inner_text() == "99 %"
    page.reload()
    assert page.locator(f"tr[data-id='{conn.pk}'] .col-uptime_30d").is_visible()
    from connections.models import TableColumns

    assert "uptime_30d" not in TableColumns.objects.get(user=owner).hidden
