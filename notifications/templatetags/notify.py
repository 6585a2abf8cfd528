"""The header bell and the Watch button, for the pages of other apps: their templates load
these tags, so their views need not know notifications exist (apps depend one way)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from notifications import center

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def bell(context: template.Context) -> dict[str, Any]:
    """The bell with the user's unread count (one query)."""
    request = context.get("request")
    return {"unread": center.unread_count(request.user) if request is not None else 0}


@register.inclusion_tag("notifications/_watch.html", takes_context=True)
def watch_button(
    context: template.Context, connection: Any = None, environment: Any = None
) -> dict[str, Any]:
    """Watch/Unwatch for a connection or an environment the page already showed the user."""
    request = context["request"]
    if connection is not None:
        action = reverse("notifications:watch-connection", args=[connection.pk])
    else:
        action = reverse("notifications:watch-environment", args=[environment.pk])
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "action": action,
        "watching": center.is_watching(
            request.user, connection=connection, environment=environment
        ),
    }
