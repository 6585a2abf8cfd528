"""Notification pages: channels (settings, rules, test, delivery log), the notification center,
the header bell and watches. Thin: ``channels`` decides what may change, ``center`` what a user
sees; every row comes through a ``restrict``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from connections.choices import STATUS_STYLE
from connections.mentions import read_as
from connections.models import Connection
from core.forms import attach_errors
from environments.models import Environment

from . import center, channels, delivery
from .choices import Category, ChannelKind
from .forms import ChannelForm, RuleForm
from .models import Channel, Rule

EVENTS_PER_PAGE = 25
DELIVERIES_PER_PAGE = 50


def _channel(request: HttpRequest, pk: int) -> tuple[Channel, bool]:
    """The channel (404 unless the user may see it) and whether they may change it."""
    channel = get_object_or_404(
        Channel.objects.restrict(request.user).select_related("environment", "owner"), pk=pk
    )
    return channel, channels.can_manage(request.user, channel)


def _forbidden(request: HttpRequest, channel: Channel) -> HttpResponse:
    messages.error(request, f"You may view '{channel.name}' but not change it.")
    return HttpResponseRedirect(reverse("notifications:channel", args=[channel.pk]), status=303)


def _show_secret(request: HttpRequest, channel: Channel, secret: str, created: bool):
    """The signing secret, this once: rendered into this response only (never stored in the
    session or a cookie), and not cached."""
    response = render(
        request,
        "notifications/secret.html",
        {"channel": channel, "secret": secret, "created": created},
    )
    add_never_cache_headers(response)
    return response


@login_required
def channel_list(request: HttpRequest) -> HttpResponse:
    rows = Channel.objects.restrict(request.user).select_related("environment", "owner")
    return render(request, "notifications/channel_list.html", {"channels": rows})


@sensitive_post_parameters("destination")
@login_required
def channel_add(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None, user=request.user)
    rule_form = RuleForm(request.POST or None, user=request.user, prefix="rule")
    if request.method == "POST":
        if all([form.is_valid(), rule_form.is_valid()]):  # both, for every error at once
            try:
                channel, secret = channels.create_channel(
                    request.user, **form.channel_fields(), rule=rule_form.rule_fields()
                )
            except ValidationError as exc:
                attach_errors(exc, form, rule_form)
            else:
                if secret:
                    return _show_secret(request, channel, secret, created=True)
                messages.success(request, f"Channel '{channel.name}' created.")
                return redirect("notifications:channel", pk=channel.pk)
        context = {"form": form, "rule_form": rule_form}
        return render(request, "notifications/channel_form.html", context, status=400)
    return render(
        request, "notifications/channel_form.html", {"form": form, "rule_form": rule_form}
    )


@sensitive_post_parameters("destination")
@login_required
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel, allowed = _channel(request, pk)
    if not allowed:
        return _forbidden(request, channel)
    form = ChannelForm(request.POST or None, user=request.user, channel=channel)
    if request.method == "POST":
        if form.is_valid():
            try:
                channels.update_channel(request.user, channel, **form.channel_fields())
            except ValidationError as exc:
                attach_errors(exc, form)
                channel.refresh_from_db()  # the page shows the stored settings, not the refused
            except PermissionDenied:
                return _forbidden(request, channel)
            else:
                messages.success(request, f"Channel '{channel.name}' saved.")
                return redirect("notifications:channel", pk=channel.pk)
        context = {"form": form, "channel": channel}
        return render(request, "notifications/channel_form.html", context, status=400)
    return render(request, "notifications/channel_form.html", {"form": form, "channel": channel})


def _detail_context(request: HttpRequest, channel: Channel, can_change: bool) -> dict:
    labels = dict(Category.choices)
    user = request.user
    # a rule names only what the viewer may see (the one who made it may have lost access to
    # some of it since); the rest is counted, never named
    rules = list(
        channel.rules.prefetch_related(
            Prefetch(
                "environments",
                queryset=Environment.objects.restrict(user),
                to_attr="shown_environments",
            ),
            Prefetch(
                "connections",
                queryset=Connection.all_objects.restrict(user),
                to_attr="shown_connections",
            ),
        )
        .annotate(scope=Count("environments", distinct=True) + Count("connections", distinct=True))
        .order_by("pk")
    )
    for rule in rules:
        rule.category_labels = [labels.get(value, value) for value in rule.categories]
        rule.hidden = rule.scope - len(rule.shown_environments) - len(rule.shown_connections)
    log = Paginator(channel.deliveries.order_by("-attempted_at", "-pk"), DELIVERIES_PER_PAGE)
    return {
        "channel": channel,
        "can_change": can_change,
        "rules": rules,
        "deliveries": log.get_page(request.GET.get("page")),
        "is_webhook": channel.kind == ChannelKind.WEBHOOK,
    }


@login_required
def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    channel, can_change = _channel(request, pk)
    context = _detail_context(request, channel, can_change)
    if can_change:
        context["rule_form"] = RuleForm(user=request.user, channel=channel, prefix="rule")
    return render(request, "notifications/channel_detail.html", context)


@login_required
@require_POST
def rule_add(request: HttpRequest, pk: int) -> HttpResponse:
    channel, allowed = _channel(request, pk)
    if not allowed:
        return _forbidden(request, channel)
    rule_form = RuleForm(request.POST, user=request.user, channel=channel, prefix="rule")
    if rule_form.is_valid():
        try:
            channels.save_rule(request.user, channel, Rule(), **rule_form.rule_fields())
        except ValidationError as exc:
            attach_errors(exc, rule_form)
        else:
            messages.success(request, "Rule added.")
            return redirect("notifications:channel", pk=channel.pk)
    context = _detail_context(request, channel, True)
    context["rule_form"] = rule_form
    return render(request, "notifications/channel_detail.html", context, status=400)


@login_required
@require_POST
def rule_delete(request: HttpRequest, pk: int, rule_pk: int) -> HttpResponse:
    channel, allowed = _channel(request, pk)
    if not allowed:
        return _forbidden(request, channel)
    rule = get_object_or_404(channel.rules, pk=rule_pk)
    rule.delete()
    if not channel.rules.exists():
        messages.warning(request, "Rule deleted. The channel has no rules left: it hears nothing.")
    else:
        messages.success(request, "Rule deleted.")
    return redirect("notifications:channel", pk=channel.pk)


@login_required
@require_POST
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test message now and show how it went (the attempt is in the log too)."""
    channel, allowed = _channel(request, pk)
    if not allowed:
        return _forbidden(request, channel)
    result = delivery.send_test(channel)
    if result.ok:
        code = f"HTTP {result.status_code}, " if result.status_code else ""
        messages.success(request, f"Test sent: {code}{result.latency_ms or 0:.0f} ms.")
    else:
        code = f" (HTTP {result.status_code})" if result.status_code else ""
        messages.error(request, f"Test failed{code}: {result.error or 'no answer'}")
    return redirect("notifications:channel", pk=channel.pk)


@login_required
@require_POST
def channel_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    channel, allowed = _channel(request, pk)
    if not allowed:
        return _forbidden(request, channel)
    if channel.kind != ChannelKind.WEBHOOK:
        messages.error(request, "Only a webhook channel has a signing secret.")
        return redirect("notifications:channel", pk=channel.pk)
    secret = channels.rotate_secret(request.user, channel)
    return _show_secret(request, channel, secret, created=False)


@login_required
@require_POST
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel, allowed = _channel(request, pk)
    if not allowed:
        return _forbidden(request, channel)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm the deletion.")
        return HttpResponseRedirect(reverse("notifications:channel", args=[pk]), status=303)
    name = channel.name
    channel.delete()
    messages.success(request, f"Channel '{name}' deleted, with its rules and delivery log.")
    return redirect("notifications:channels")


@login_required
def notification_center(request: HttpRequest) -> HttpResponse:
    events = center.visible_events(request.user).select_related("connection")
    watched = request.GET.get("watched") == "1"
    if watched:
        events = events.filter(connection_id__in=center.watched_connection_ids(request.user))
    category = request.GET.get("category", "")
    if category in Category.values:
        events = events.filter(category=category)
    else:
        category = ""
    page = Paginator(events.order_by("-created_at", "-pk"), EVENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    read_as(request.user, page, ("reason", "mentions"), ("quiet", "quiet_mentions"))
    for event in page:
        event.from_style = STATUS_STYLE.get(event.from_status)
        event.to_style = STATUS_STYLE.get(event.to_status)
    context = {
        "page": page,
        "watched": watched,
        "category": category,
        "categories": Category.choices,
        "read_up_to": center.read_up_to(request.user),
    }
    return render(request, "notifications/center.html", context)


@login_required
@require_POST
def mark_read(request: HttpRequest) -> HttpResponse:
    center.mark_all_read(request.user)
    if request.htmx:
        return _bell(request)
    messages.success(request, "All notifications marked read.")
    return redirect("notifications:center")


def _bell(request: HttpRequest) -> HttpResponse:
    unread = center.unread_count(request.user)
    response = render(request, "notifications/_bell.html", {"unread": unread})
    add_never_cache_headers(response)
    return response


@login_required
@require_GET
def bell(request: HttpRequest) -> HttpResponse:
    """The bell alone, for its 30 s htmx refresh (one query for the count)."""
    return _bell(request)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = fallback
    return HttpResponseRedirect(target, status=303)


@login_required
@require_POST
def watch_connection(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection.objects.restrict(request.user), pk=pk)
    watching = request.POST.get("watch") != "0"
    center.set_watch(request.user, watching, connection=connection)
    verb = "are watching" if watching else "no longer watch"
    messages.success(request, f"You {verb} '{connection.name}'.")
    return _back(request, reverse("connections:detail", args=[pk]))


@login_required
@require_POST
def watch_environment(request: HttpRequest, pk: int) -> HttpResponse:
    environment = get_object_or_404(Environment.objects.restrict(request.user), pk=pk)
    watching = request.POST.get("watch") != "0"
    center.set_watch(request.user, watching, environment=environment)
    verb = "are watching" if watching else "no longer watch"
    messages.success(request, f"You {verb} '{environment.name}' and its connections.")
    return _back(request, reverse("environments:detail", args=[pk]))
