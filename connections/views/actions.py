"""State changes from the pages, one row or many, through ``connections.lifecycle``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from connections.grouping import change_membership
from core import access
from environments.models import Environment

from .. import lifecycle
from ..choices import Status
from ..exporting import NotMatching, matching
from ..forms import BulkActionForm
from ..listing import COUNT_CAP
from ..models import Connection
from ..tagging import change_tag
from ..ui import _done, clean_reason, report_messages, visible


@login_required
@require_POST
def connection_transition(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(visible(request), pk=pk)
    fallback = reverse("connections:detail", args=[pk])
    target = request.POST.get("to", "")
    if target not in Status.values:
        messages.error(request, f"Unknown state '{target}'.")
        return _done(request, fallback, 400)
    try:
        record = lifecycle.perform_user_action(
            connection, target, user=request.user, reason=clean_reason(request.POST.get("reason"))
        )
    except PermissionDenied:
        messages.error(request, f"You may view '{connection.name}' but not change its state.")
        return _done(request, fallback, 403)
    except (lifecycle.TransitionRefused, lifecycle.RegistrationFailed) as exc:
        messages.error(request, str(exc))
        return _done(request, fallback, 409)
    text = f"'{connection.name}' is now {record.get_to_status_display()}"
    if record.reason and record.to_status == Status.NOT_FOUND:
        text += f": {record.reason}"
    messages.success(request, text + ".")
    return _done(request, fallback)


@login_required
@require_POST
def connection_probe(request: HttpRequest, pk: int) -> HttpResponse:
    """Probe now: the result in the page's message, the state by the usual rules."""
    from ..probing.now import NotProbed, TooSoon, probe_now

    connection = get_object_or_404(visible(request), pk=pk)
    fallback = reverse("connections:detail", args=[pk])
    try:
        probed = probe_now(request.user, connection)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return _done(request, fallback, 403)
    except NotProbed as exc:
        messages.error(request, str(exc))
        return _done(request, fallback, 409)
    except TooSoon as exc:
        messages.warning(request, str(exc))
        return _done(request, fallback, 429)
    state = probed.connection.get_status_display()
    if probed.ok:
        latency = f" in {probed.latency_ms:.0f} ms" if probed.latency_ms is not None else ""
        messages.success(request, f"'{connection.name}' answered{latency}: {state}.")
    else:
        messages.error(request, f"'{connection.name}' failed the probe: {probed.said} ({state}.)")
    return _done(request, fallback)


# "All matching" acts on at most this many rows: the table counts each state only that far
# (connections/listing.py), and one request does not change a whole fleet.
BULK_MAX = COUNT_CAP


def needs_confirmation(action: tuple[str, str | int], all_matching: bool) -> bool:
    """Deleting, or acting on every row matching the filters (rows the user never saw), is
    only done with the count the user confirmed."""
    return all_matching or action == ("transition", Status.DELETED)


def _confirmed_count(request: HttpRequest) -> int | None:
    raw = request.POST.get("confirm_count", "").strip().replace(",", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


@login_required
@require_POST
def connection_bulk(request: HttpRequest) -> HttpResponse:
    fallback = reverse("connections:list")
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _done(request, fallback, 400)
    data = form.cleaned_data
    confirmed = _confirmed_count(request)
    if needs_confirmation(data["action"], data["all_matching"]) and confirmed is None:
        messages.error(
            request,
            "This action needs a confirmation of how many connections it changes; "
            "nothing was changed.",
        )
        return _done(request, fallback, 400)
    if data["all_matching"]:
        try:
            rows = matching(request, QueryDict(request.POST.get("query", "")))
        except NotMatching as exc:
            messages.error(request, str(exc))
            return _done(request, fallback, 400)
        connections = list(rows[: BULK_MAX + 1])
        if len(connections) > BULK_MAX:
            messages.error(
                request,
                f"More than {BULK_MAX:,} connections match the filters: narrow them to act on "
                f"all of them at once (at most {BULK_MAX:,}). Nothing was changed.",
            )
            return _done(request, fallback, 400)
        if confirmed != len(connections):
            messages.error(
                request,
                f"The rows matching the filters changed: you confirmed {confirmed:,}, "
                f"{len(connections):,} match now. Nothing was changed; check the table "
                "and try again.",
            )
            return _done(request, fallback, 409)
    else:
        connections = list(visible(request).filter(pk__in=data["ids"]))
        if len(connections) != len(set(data["ids"])):
            return render(request, "404.html", status=404)
        if confirmed is not None and confirmed != len(connections):
            messages.error(
                request,
                f"You confirmed {confirmed:,} connections but {len(connections):,} are "
                "selected. Nothing was changed.",
            )
            return _done(request, fallback, 409)
    verb, value = data["action"]
    if verb == "tag":
        may = access.ids_by_action(
            request.user, Connection.all_objects, [c.pk for c in connections], (access.CHANGE,)
        )[access.CHANGE]
        report = change_tag(
            [c for c in connections if c.pk in may], data["tag"], add=value == "add"
        )
        report.refused += [(c.name, "you may not edit it") for c in connections if c.pk not in may]
    elif verb == "transition":
        report = lifecycle.perform_bulk_action(
            connections, value, user=request.user, reason=clean_reason(data.get("reason"))
        )
    else:
        environment = get_object_or_404(
            Environment.objects.restrict(request.user, "change"), pk=value
        )
        report = change_membership(environment, request.user, connections, assign=verb == "assign")
    report_messages(request, report)
    return _done(request, fallback)
