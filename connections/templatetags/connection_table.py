"""The table's hot loop in Python: a page of 50 rows has 1,500 heartbeat ticks, and drawing them
with the template language cost most of the fragment's time (about 180 ms of 190)."""

from __future__ import annotations

import time
from html import escape  # the standard library's: Django's is lazy-aware, and slower

from django import template
from django.middleware.csrf import get_token
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from core.templatetags.ui import ago_seconds, ago_text, icon_markup
from core.urlcache import pk_url

register = template.Library()


def tick_title(tick: dict, now: float) -> str:
    """``now`` and the tick's ``at``: seconds since the epoch (``connections.table.rows.Beat``)."""
    if tick["state"] == "none":
        return "no probe yet"
    parts = ["ok" if tick["state"] == "ok" else "failed"]
    if tick.get("latency") is not None:
        parts.append(f"{tick['latency']:.0f} ms")
    if tick.get("error"):
        parts.append(tick["error"])
    parts.append(ago_seconds(int(now - tick["at"])))
    parts.append(tick["local"])
    return " · ".join(parts)


@register.simple_tag
def heartbeat_ticks(ticks: list[dict]) -> str:
    """A row's ticks: ``<span class="beat beat-ok|failed|none" role="img" title="…">``, the
    title escaped (an error text is the endpoint's, not ours)."""
    now = time.time()
    return mark_safe(  # noqa: S308 (every interpolated value is escaped here)
        "".join(
            f'<span class="beat beat-{escape(tick["state"])}" role="img" '
            f'title="{escape(tick_title(tick, now))}"></span>'
            for tick in ticks
        )
    )


# ---- a connection's state as a menu: the table's rows and the connection page share it ------
#
# The menu is a native popover (the top layer: never clipped by the table's scroll box);
# static/js/app.js places it by its button and adds the keyboard; without script the button
# still opens it. Drawn here, not in a template: a table page draws fifty of them, and the
# template cost about 0.4 ms each.


ACTION_ICONS = {
    "deleted": "trash-2",
    "maintenance": "wrench",
    "ignored": "circle-pause",
    "connected": "link",
}


@register.simple_tag
def state_badge(style, status: str, label: str) -> str:
    """A state's badge: its colour, its symbol (told apart without colour) and its name;
    ``style`` is ``STATUS_STYLE``'s, or a colour without ``status``."""
    style = style or ("", "", "")  # a state this release does not know: its name only
    colour = "" if status else f' style="--state: {escape(str(style[1]))}"'
    css = f" state-{escape(status)}" if status else ""
    return mark_safe(  # noqa: S308 (every interpolated value is escaped here)
        f'<span class="badge{css}"{colour}><span aria-hidden="true">{escape(str(style[2]))}'
        f"</span> {escape(str(label))}</span>"
    )


@register.simple_tag(takes_context=True)
def state_menu(context, connection, style, actions, can_change, in_table=False) -> str:
    """The state badge as a button that opens what the user may do from this state (the
    lifecycle's user edges, ``actions``: given when the user may transition it) and Edit (when
    they may change it); only the badge when there is nothing."""
    status = connection.status
    badge = state_badge(style, status, connection.get_status_display())
    editable = bool(can_change) and status != "deleted"
    if not actions and not editable:
        return badge
    request = context.get("request")
    pk, name = int(connection.pk), escape(connection.name)
    detail = pk_url("connections:detail", pk)
    parts = [
        '<div class="state-menu">',
        f'<button type="button" class="state-trigger" id="state-btn-{pk}" '
        f'popovertarget="state-menu-{pk}" aria-haspopup="menu" aria-expanded="false" '
        f'aria-controls="state-menu-{pk}" title="Change the state of {name}">{badge}'
        f'<span class="visually-hidden">, change state</span>{icon_markup("chevron-down", "", 16)}'
        "</button>",
        f'<div class="menu-panel" id="state-menu-{pk}" popover role="menu" '
        f'aria-labelledby="state-btn-{pk}">',
    ]
    if actions:
        post = escape(pk_url("connections:transition", pk))
        # one token for the whole page (each get_token() masks it anew, 64 random characters)
        token = context.get("csrf_token") or (get_token(request) if request else "")
        token = escape(str(token))
        here = escape(request.get_full_path()) if request is not None else ""
        parts.append(
            f'<form class="menu-form" method="post" action="{post}">'
            f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
            f'<input type="hidden" name="next" value="{here}">'
        )
        for action in actions:
            target = str(action["target"])
            htmx = f' hx-post="{post}" hx-swap="none"' if in_table else ""
            danger = ' class="danger-item"' if target == "deleted" else ""
            symbol = icon_markup(ACTION_ICONS.get(target, "refresh-cw"), "", 16)
            parts.append(
                f'<button type="submit" role="menuitem" tabindex="-1" name="to" '
                f'value="{escape(target)}"{htmx} data-confirm="{name}: '
                f'{escape(str(action["confirm"]))}"{danger}>{symbol}'
                f"{escape(str(action['label']))}</button>"
            )
        parts.append("</form>")
    if editable:
        parts.append(
            f'<a role="menuitem" tabindex="-1" href="{escape(detail)}edit/">'
            f"{icon_markup('pencil', '', 16)}Edit</a>"
        )
    parts.append("</div></div>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated value is escaped here)


# ---- a page of rows -------------------------------------------------------------------------
#
# Fifty rows of eleven cells each, drawn by the template language, took about half of a table
# page's time (some 40 ms of 90 on this machine); the same markup from Python takes a tenth of
# that. The markup is what templates/connections/_table.html drew before, byte for byte.


def _stamp(moment) -> tuple[str, str]:
    """A datetime as the template's ``|date:'c'`` and the local time it shows."""
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.isoformat(), local


def _last_probe_cell(connection) -> str:
    at = connection.last_probe_at
    if not at:
        return '<span class="muted">never</span>'
    iso, local = _stamp(at)
    cell = (
        f'<time data-ago datetime="{escape(iso)}" title="{local:%Y-%m-%d %H:%M:%S}">'
        f"{escape(ago_text(at))}</time>"
    )
    if connection.last_probe_ok is False:
        return f'{cell} · <span class="probe-failed">failed</span>'
    if connection.last_latency_ms is not None:
        return f"{cell} · {escape(str(floatformat(connection.last_latency_ms, 0)))} ms"
    return cell


def _row(context, row: dict) -> str:
    connection = row["connection"]
    pk, name = int(connection.pk), escape(connection.name)
    kind = connection.kind_info
    url = row["url"]
    environments = ", ".join(escape(e) for e in row["environments"])
    if environments:
        environments_cell = f'<td class="col-environments" title="{environments}">{environments}'
    else:
        environments_cell = (
            '<td class="col-environments"><span class="muted"><span aria-hidden="true">—'
            '</span><span class="visually-hidden">none</span></span>'
        )
    beats, problem = int(row["beats"]), row["problem"]
    problem_cell = (
        f'<span class="problem" id="why-{pk}" tabindex="0" title="{escape(problem)}">'
        f"{icon_markup('circle-alert', '', 16)}<span>{escape(problem)}</span></span>"
        if problem
        else ""
    )
    created_iso, created = _stamp(connection.created_at)
    managed = "yes" if connection.managed else '<span class="muted">no</span>'
    # only what the bulk actions would accept is selectable (core.access: transition)
    select = (
        f'<input type="checkbox" name="select" id="sel-{pk}" value="{pk}" '
        f'aria-label="Select {name}">'
        if row["can_transition"]
        else ""
    )
    menu = state_menu(
        context, connection, row["style"], row["actions"], row["can_change"], in_table=True
    )
    return (
        f'\n      <tr data-id="{pk}" data-status="{escape(connection.status)}">'
        f'\n        <td class="select">{select}</td>'
        f'\n        <td class="col-name"><a id="name-{pk}" '
        f'href="{escape(pk_url("connections:detail", pk))}" title="{name}">{name}</a></td>'
        f'\n        <td class="col-kind" title="{escape(kind.label)}">'
        f"{icon_markup(str(kind.icon), '', 16)}"
        f'<span class="kind-label">{escape(kind.label)}</span></td>'
        f'\n        <td class="col-url"><span class="url-cell{" has-rest" if url["rest"] else ""}"'
        f' title="{escape(connection.url)}"><span class="url-host">{escape(url["host"])}</span>'
        f'<span class="url-port">{escape(url["port"])}</span>'
        f'<span class="url-rest">{escape(url["rest"])}</span></span></td>'
        f"\n        {environments_cell}</td>"
        f'\n        <td class="col-status">{menu}</td>'
        f'\n        <td class="col-heartbeat"><span class="beats" id="hb-{pk}" tabindex="0" '
        f'role="group"\n            aria-label="Last {beats} probe{"" if beats == 1 else "s"} of '
        f'{name}: {int(row["failed_beats"])} failed. Arrow keys read each.">'
        f"{heartbeat_ticks(row['heartbeat'])}</span></td>"
        f'\n        <td class="col-last_probe_at">{_last_probe_cell(connection)}</td>'
        f'\n        <td class="col-problem">{problem_cell}</td>'
        f'\n        <td class="col-created_at"><time datetime="{escape(created_iso)}" '
        f'title="{created:%Y-%m-%d %H:%M}">{created:%Y-%m-%d}</time></td>'
        f'\n        <td class="col-managed">{managed}</td>'
        "\n      </tr>\n    "
    )


@register.simple_tag(takes_context=True)
def table_rows(context, rows: list[dict]) -> str:
    """The table's ``<tr>`` elements (``page_rows``' dicts), or the row that says none match.
    Every value from the database or the user is escaped here."""
    if not rows:
        add = escape(reverse("connections:add"))
        return mark_safe(  # noqa: S308 (no value but a reversed URL, escaped)
            f'\n      <tr><td colspan="12" class="empty">No connections match. '
            f'<a href="{add}">Add one</a> or clear the filters.</td></tr>\n    '
        )
    return mark_safe("".join(_row(context, row) for row in rows))  # noqa: S308 (escaped in _row)
