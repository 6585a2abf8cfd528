"""The "maintenance windows" block of a connection's and an environment's page: their templates
load this tag, so their views need not know maintenance exists (apps depend one way)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone

from core import access
from maintenance import windows
from maintenance.models import Window
from maintenance.scope import covering

register = template.Library()


@register.filter
def visible_connections(window: Window, user: Any) -> list:
    """A window's connections that ``user`` may see (names of others are never shown)."""
    from connections.models import Connection

    visible = Connection.all_objects.restrict(user).values("pk")
    return list(window.connections.filter(pk__in=visible).order_by("name", "pk"))


def _live(user: Any) -> list[Window]:
    return list(Window.objects.restrict(user).filter(enabled=True).select_related("owner"))


@register.inclusion_tag("maintenance/_windows_block.html", takes_context=True)
def maintenance_windows(
    context: template.Context, connection: Any = None, environment: Any = None
) -> dict[str, Any]:
    """The active and upcoming windows the viewer may see that cover the connection, or the
    environment (as a scope, as their own, or through any of its connections), next
    occurrences in the viewer's timezone. A fixed number of queries."""
    request = context["request"]
    now = timezone.now()
    tz = windows.viewer_timezone(request)
    candidates = _live(request.user)
    counts: dict[int, int] = {}
    if connection is not None:
        found = {
            w.pk for w in covering(candidates, {connection.pk: connection.kind})[connection.pk]
        }
    else:
        kinds = dict(environment.connections.values_list("pk", "kind"))
        for covering_windows in covering(candidates, kinds).values():
            for w in covering_windows:
                counts[w.pk] = counts.get(w.pk, 0) + 1
        found = set(counts)
        found |= {w.pk for w in candidates if w.environment_id == environment.pk}
        found |= set(
            Window.environments.through.objects.filter(
                environment_id=environment.pk, window_id__in=[w.pk for w in candidates]
            ).values_list("window_id", flat=True)
        )
    rows = []
    for window in candidates:
        if window.pk not in found:
            continue
        windows.annotate(window, now, tz)
        if window.state == "past":
            continue
        window.covered_count = counts.get(window.pk, 0) if environment is not None else None
        rows.append(window)
    rows.sort(key=lambda w: (w.state != "active", w.upcoming[0]["start"], w.pk))
    return {
        "request": request,
        "rows": rows,
        "environment": environment,
        "viewer_tz_name": tz.key,
        "plan_url": plan_url(request.user, connection, environment),
    }


def plan_url(user: Any, connection: Any = None, environment: Any = None) -> str:
    """ "Plan a window" for this connection or environment, filled in: offered only to whom the
    window form would accept it from (who may change the connection, or edit the
    environment), never a link to a refusal."""
    target = connection if connection is not None else environment
    if target is None or not access.may(user, target, access.CHANGE):
        return ""
    name = "connections" if connection is not None else "environment"
    return f"{reverse('maintenance:add')}?{name}={target.pk}"
