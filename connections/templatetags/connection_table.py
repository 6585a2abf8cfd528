"""The table's hot loop in Python: a page of 50 rows has 1,500 heartbeat ticks, and drawing them
with the template language cost most of the fragment's time (about 180 ms of 190)."""

from __future__ import annotations

import functools
import time
from html import escape  # the standard library's: Django's is lazy-aware, and slower

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.middleware.csrf import get_token
from django.urls import get_script_prefix, reverse
from django.utils.safestring import mark_safe

from meshplay.templatetags.ui import ago_seconds, icon_markup

register = template.Library()


def tick_title(tick: dict, now: float) -> str:
    """``now`` and the tick's ``at``: seconds since the epoch (views/table.py's ``Beat``)."""
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


def pk_url(name: str, pk: int) -> str:
    """``reverse(name, args=[pk])`` for a URL whose only argument is a primary key, from a
    pattern reversed once per process and script prefix (a page asks for 150 of them)."""
    return _pk_pattern(name, get_script_prefix()).format(int(pk))


@functools.lru_cache(maxsize=64)
def _pk_pattern(name: str, prefix: str) -> str:
    marker = 987654321987
    return (
        reverse(name, args=[marker])
        .replace("{", "{{")
        .replace("}", "}}")
        .replace(str(marker), "{0}")
    )


@receiver(setting_changed)
def _urls_changed(setting: str, **kwargs) -> None:
    if setting == "ROOT_URLCONF":
        _pk_pattern.cache_clear()


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
    lifecycle's user edges, ``actions``) and Edit; only the badge when there is nothing."""
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
