"""Maintenance window pages: the list (active, upcoming, past), a window's page, the form,
"End now", enable/disable and delete. Thin: ``windows`` decides what may change; every row
comes through ``Window.objects.restrict``.

Times are shown in the viewer's timezone: the project keeps none per user (``TIME_ZONE`` is
UTC, no middleware activates another), so the list page has a selector (``?tz=``, remembered in
the session for the other pages); each occurrence is also shown in the window's own zone."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from connections.models import Connection
from core.forms import attach_errors
from core.ids import parse_id

from . import windows
from .forms import WindowForm, timezone_names
from .models import Window

PAST_SHOWN = 50


def _window(request: HttpRequest, pk: int) -> tuple[Window, bool]:
    """The window (404 unless the user may see it) and whether they may change it."""
    window = get_object_or_404(
        Window.objects.restrict(request.user).select_related("environment", "owner"), pk=pk
    )
    return window, windows.can_manage(request.user, window)


def _forbidden(request: HttpRequest, window: Window) -> HttpResponse:
    messages.error(request, f"You may view '{window.name}' but not change it.")
    return HttpResponseRedirect(reverse("maintenance:detail", args=[window.pk]), status=303)


def _tz_context(request: HttpRequest) -> dict:
    tz = windows.viewer_timezone(request)
    return {"viewer_tz": tz, "viewer_tz_name": tz.key, "timezone_names": timezone_names()}


@login_required
def window_list(request: HttpRequest) -> HttpResponse:
    chosen = request.GET.get("tz", "")
    if chosen and not windows.remember_timezone(request, chosen[:64]):
        messages.error(request, "That is not an IANA timezone (e.g. Europe/Amsterdam).")
    context = _tz_context(request)
    now = timezone.now()
    rows = (
        Window.objects.restrict(request.user)
        .select_related("environment", "owner")
        .prefetch_related("connections", "environments")
    )
    manageable = set(Window.objects.restrict(request.user, "change").values_list("pk", flat=True))
    groups: dict[str, list[Window]] = {"active": [], "upcoming": [], "past": []}
    for window in rows:
        windows.annotate(window, now, context["viewer_tz"])
        window.can_change = window.pk in manageable
        groups[window.state].append(window)
    groups["active"].sort(key=lambda w: w.upcoming[0]["end"])
    groups["upcoming"].sort(key=lambda w: w.upcoming[0]["start"])
    past = groups["past"][:PAST_SHOWN]
    context.update(
        active=groups["active"],
        upcoming=groups["upcoming"],
        past=past,
        past_more=len(groups["past"]) - len(past),
        now=now,
    )
    return render(request, "maintenance/list.html", context)


@login_required
def window_detail(request: HttpRequest, pk: int) -> HttpResponse:
    window, can_change = _window(request, pk)
    context = _tz_context(request)
    now = timezone.now()
    windows.annotate(window, now, context["viewer_tz"], n=windows.NEXT_SHOWN)
    context.update(
        window=window,
        can_change=can_change,
        # only those the viewer may see now (a connection may have left the environment)
        connections=list(
            window.connections.filter(
                pk__in=Connection.all_objects.restrict(request.user).values("pk")
            ).order_by("name", "pk")
        ),
        environments=list(window.environments.order_by("name", "pk")),
        now=now,
    )
    return render(request, "maintenance/detail.html", context)


def _form_page(request, form, window=None, status=200) -> HttpResponse:
    context = {"form": form, "window": window, **_tz_context(request)}
    return render(request, "maintenance/form.html", context, status=status)


@login_required
def window_add(request: HttpRequest) -> HttpResponse:
    # "Plan a window" from a connection's or an environment's page fills its scope in
    initial = {
        "connections": [i for i in map(parse_id, request.GET.getlist("connections")[:50]) if i],
        "environment": parse_id(request.GET.get("environment", "")),
    }
    form = WindowForm(request.POST or None, user=request.user, initial=initial)
    if request.method != "POST":
        return _form_page(request, form)
    if form.is_valid():
        try:
            window = windows.save_window(request.user, Window(), **form.window_fields())
        except ValidationError as exc:
            attach_errors(exc, form)
        else:
            messages.success(request, f"Maintenance window '{window.name}' created.")
            return redirect("maintenance:detail", pk=window.pk)
    return _form_page(request, form, status=400)


@login_required
def window_edit(request: HttpRequest, pk: int) -> HttpResponse:
    window, allowed = _window(request, pk)
    if not allowed:
        return _forbidden(request, window)
    form = WindowForm(request.POST or None, user=request.user, window=window)
    if request.method != "POST":
        return _form_page(request, form, window)
    if form.is_valid():
        try:
            windows.save_window(request.user, window, **form.window_fields())
        except ValidationError as exc:
            attach_errors(exc, form)
            window.refresh_from_db()  # the page names the stored window, not the refused one
        except PermissionDenied:
            return _forbidden(request, window)
        else:
            messages.success(request, f"Maintenance window '{window.name}' saved.")
            return redirect("maintenance:detail", pk=window.pk)
    return _form_page(request, form, window, status=400)


@login_required
@require_POST
def window_end_now(request: HttpRequest, pk: int) -> HttpResponse:
    window, allowed = _window(request, pk)
    if not allowed:
        return _forbidden(request, window)
    try:
        windows.end_now(request.user, window)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"'{window.name}' ended now: its connections leave maintenance within a few seconds.",
        )
    return redirect("maintenance:detail", pk=window.pk)


@login_required
@require_POST
def window_enable(request: HttpRequest, pk: int) -> HttpResponse:
    window, allowed = _window(request, pk)
    if not allowed:
        return _forbidden(request, window)
    enabled = request.POST.get("enabled") != "0"
    windows.set_enabled(request.user, window, enabled)
    messages.success(request, f"'{window.name}' {'enabled' if enabled else 'disabled'}.")
    return redirect("maintenance:detail", pk=window.pk)


@login_required
@require_POST
def window_delete(request: HttpRequest, pk: int) -> HttpResponse:
    window, allowed = _window(request, pk)
    if not allowed:
        return _forbidden(request, window)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm the deletion.")
        return HttpResponseRedirect(reverse("maintenance:detail", args=[pk]), status=303)
    name = window.name
    windows.delete_window(request.user, window)
    messages.success(request, f"Maintenance window '{name}' deleted.")
    return redirect("maintenance:list")
