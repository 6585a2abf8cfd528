"""Choosing connections by name: the searchable picker of every form that names connections
(a parent, an environment's connections, a maintenance window's or a notification rule's
connections). ``choices`` is the one query; ``views.options`` serves it to the picker's search
box (templates/connections/_picker.html); ``widgets.PickerSelectMultiple`` is the list a form
renders with it."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from core.ids import parse_id
from environments.models import Environment

from ..models import Connection

LIMIT = 50  # options a picker shows at once: type more of the name to narrow them
MAX_QUERY = 200


ACTIONS = ("view", "change")  # what the picker's form will do with them: see, or change


def search_text(q: str) -> str:
    """What a picker's search box holds, as a pattern: printable text only (PostgreSQL refuses
    a NUL in a pattern), one space between words, at most MAX_QUERY characters."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in q).split())[:MAX_QUERY]


def choices(
    user: Any,
    q: str = "",
    exclude: list[int] | None = None,
    action: str = "view",
    environment: int | None = None,
) -> QuerySet:
    """The connections ``user`` may ``action`` whose name or URL contains ``q``, by name, at
    most LIMIT; none of ``exclude``; with ``environment``, only those of that environment
    (none when the user may not see it: an environment one cannot see is no scope)."""
    found = Connection.objects.restrict(user, action if action in ACTIONS else "view")
    q = search_text(q)
    if q:
        found = found.filter(Q(name__icontains=q) | Q(url__icontains=q))
    if exclude:
        found = found.exclude(pk__in=exclude)
    if environment is not None:
        seen = Environment.objects.restrict(user).filter(pk=environment).values("pk")
        found = found.filter(environments__in=seen)
    return found.only("pk", "name", "url").order_by("name", "pk")[:LIMIT]


def excluded(raw: str) -> list[int]:
    """Ids of a picker's ``exclude`` (comma-separated); what is not an id is ignored."""
    return [i for i in (parse_id(part) for part in raw.split(",")[:LIMIT]) if i]
