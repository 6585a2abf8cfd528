"""The locations page: every location with its state, workers, probes a minute, lag and the
connections that chose it (everyone signed in); adding one and removing one (staff)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..locating import LocationRow, location_rows
from ..models import Location, stale_before
from . import (
    Taken,
    add_location,
    chosen_by,
    manages_locations,
    remove_location,
    sees_locations,
    worker_command,
)
from .forms import LocationForm

NOT_STAFF = "Only staff add and remove locations."


def staff_only(view):
    """403 (the product's page) for anyone signed in who does not manage locations, whatever
    the id names: the answer says nothing of what exists."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not manages_locations(request.user):
            raise PermissionDenied(NOT_STAFF)
        return view(request, *args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Shown:
    row: LocationRow
    connections: int  # of those the reader may see
    command: str  # how to start a worker there (for those who manage locations)


def _page(request: HttpRequest, form: LocationForm | None = None, status: int = 200):
    manages = manages_locations(request.user)
    counts = chosen_by(request.user)
    rows = [
        Shown(row, counts.get(row.pk, 0), worker_command(row.name) if manages else "")
        for row in location_rows()
    ]
    context = {
        "rows": rows,
        "manages": manages,
        "form": form if form is not None else LocationForm() if manages else None,
        "stale_after": f"{settings.LOCATION_STALE_AFTER:g}",
    }
    return render(request, "locations/list.html", context, status=status)


@login_required
@require_safe
def location_list(request: HttpRequest) -> HttpResponse:
    if not sees_locations(request.user):
        raise PermissionDenied("Sign in with an active account to see the locations.")
    return _page(request)


@login_required
@require_POST
@staff_only
def location_add(request: HttpRequest) -> HttpResponse:
    form = LocationForm(request.POST)
    if form.is_valid():
        name = form.cleaned_data["name"]
        try:
            add_location(name, form.cleaned_data["description"])
        except Taken:  # the same name, added at the same moment
            form.add_error("name", f"There is a location named '{name}' already.")
        else:
            messages.success(
                request,
                f"Location '{name}' added. It is stale until a worker there sends its first "
                "heartbeat: start one with the command shown below.",
            )
            return redirect("locations:list")
    return _page(request, form, status=400)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@staff_only
def location_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what removing means, and the button that confirms it; POST with ``confirm=yes``:
    removed."""
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        removed = remove_location(pk)
        if removed is None:
            raise Http404("No such location.")
        said = f"Location '{removed.name}' removed; its probe results stay in the history."
        if removed.last:
            said += " No location is left: every connection is probed from one place again."
        elif removed.chosen_by:
            said += (
                f" The {removed.chosen_by} connection(s) that chose it are probed from their "
                "other locations (none left: their environments', else every location)."
            )
        messages.success(request, said)
        return redirect("locations:list")
    location = get_object_or_404(Location, pk=pk)
    status = 200
    if request.method == "POST":
        messages.error(request, "Confirm with the Remove button below.")
        status = 400
    context = {
        "location": location,
        "chosen_by": location.connections.count(),
        "defaults_of": location.environments.count(),
        "workers": location.workers.filter(heartbeat_at__gte=stale_before()).count(),
        "last": not Location.objects.exclude(pk=location.pk).exists(),
    }
    return render(request, "locations/remove.html", context, status=status)
