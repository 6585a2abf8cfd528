"""What every page about connections shares (theirs and an environment's): the visibility
rule, a row's menu, and what a POST answers (messages, then back where the user came from)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from connections import lifecycle
from connections.choices import user_action
from connections.models import Connection


def clean_reason(text: str | None) -> str:
    """A reason typed by a user: bounded, and without NUL (PostgreSQL refuses it)."""
    return (text or "").replace("\x00", "")[:500]


def visible(request: HttpRequest):
    return Connection.all_objects.restrict(request.user)


def actions_for(connection: Connection) -> list[dict]:
    """The menu of a row or page: the user edges open from its state, with their texts."""
    actions = []
    for target in lifecycle.user_targets(connection):
        label, confirm = user_action(connection.status, target)
        actions.append({"target": target, "label": label, "confirm": confirm})
    return actions


# Refusals listed one by one; beyond these, one message counts the rest.
MAX_REFUSAL_MESSAGES = 10


def report_messages(request: HttpRequest, report: lifecycle.BulkReport) -> None:
    """A bulk action's result as messages: what changed, then each refusal by name (the first
    few: an action on thousands of rows must not bury the page in messages)."""
    if report.changed:
        messages.success(request, report.summary())
    texts = report.refusal_texts()
    for text in texts[:MAX_REFUSAL_MESSAGES]:
        messages.warning(request, text)
    if len(texts) > MAX_REFUSAL_MESSAGES:
        rest = len(texts) - MAX_REFUSAL_MESSAGES
        messages.warning(
            request, f"{rest:,} more connection{'s were' if rest > 1 else ' was'} left unchanged."
        )


def back(request: HttpRequest, fallback: str) -> HttpResponse:
    """To ``next`` if it is a URL of this site, else to ``fallback``."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return HttpResponseRedirect(target)  # a URL, never a view name to reverse
    return redirect(fallback)


def _done(request: HttpRequest, fallback: str, status: int = 200) -> HttpResponse:
    """After a POST: htmx gets the messages and a signal to refresh; browsers a redirect."""
    if request.htmx:
        response = render(request, "_messages.html", status=status)
        response["HX-Trigger"] = "connections-changed"
        return response
    return back(request, fallback)
