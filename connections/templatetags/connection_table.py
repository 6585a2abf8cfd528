"""The table's tags: its rows and a connection's state menu, drawn by the Jinja2 templates of
``templates/jinja2/connections/`` (the template language took most of the fragment's time for
a page of 50 rows), and the state badge."""

from __future__ import annotations

import functools
from html import escape  # the standard library's: Django's is lazy-aware, and slower

from django import template
from django.middleware.csrf import get_token
from django.template import engines
from django.urls import reverse
from django.utils.safestring import mark_safe

register = template.Library()


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


def _hot(context) -> dict:
    """What every hot fragment needs of the page: one CSRF token for the whole page (each
    ``get_token()`` masks it anew), and where the page is."""
    request = context.get("request")
    token = context.get("csrf_token") or (get_token(request) if request else "")
    here = request.get_full_path() if request is not None else ""
    return {"csrf_token": str(token), "here": here}


@functools.cache
def _jinja():
    """The Jinja2 environment of the hot fragments, with this module's helpers as globals."""
    env = engines["jinja2"].env
    env.globals.update(badge=state_badge, action_icons=ACTION_ICONS)
    return env


@register.simple_tag(takes_context=True)
def state_menu(context, connection, style, actions, can_change, in_table=False) -> str:
    """The state badge as a button that opens what the user may do from this state (the
    lifecycle's user edges, ``actions``: given when the user may transition it) and Edit (when
    they may change it); only the badge when there is nothing (jinja2/connections/macros.html).
    """
    hot = _hot(context)
    badge = state_badge(style, connection.status, connection.get_status_display())
    macros = _jinja().get_template("connections/macros.html").module
    menu = macros.state_menu(
        connection,
        badge,
        actions,
        can_change,
        csrf_token=hot["csrf_token"],
        here=hot["here"],
        detail=reverse("connections:detail", args=[connection.pk]),
        in_table=in_table,
    )
    return mark_safe(str(menu))  # noqa: S308 (the Jinja2 environment escapes every value)


@register.simple_tag
def heartbeat_bar(bar: dict, element_id: str, label: str) -> str:
    """A heartbeat bar (``rows.heartbeat``'s dict) as the table draws it: ``label`` says what
    it shows to a screen reader."""
    macros = _jinja().get_template("connections/macros.html").module
    return mark_safe(str(macros.heartbeat_bar(bar, element_id, label)))  # noqa: S308 (escaped)


# ---- a page of rows ------------------------------------------------------------------------
#
# Fifty rows of eleven cells, a menu and thirty ticks each: drawn by Jinja2
# (templates/jinja2/connections/rows.html), which does in a few milliseconds what the template
# language took some 40 ms for.


@register.simple_tag(takes_context=True)
def table_rows(context, rows: list[dict], columns: int = 11, clear_url: str = "") -> str:
    """The table's ``<tr>`` elements (``page_rows``' dicts), or the row across all ``columns``
    that says why there are none: filters that match nothing (``clear_url`` clears them), or
    no connection yet."""
    template = _jinja().get_template("connections/rows.html")
    html = template.render(
        {**_hot(context), "rows": rows, "columns": columns, "clear_url": clear_url}
    )
    return mark_safe(html)  # noqa: S308 (the Jinja2 environment escapes every value)
