"""One connection: its page, and the add and kubeconfig import forms."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from connections import creating
from core import access
from core.forms import attach_errors
from environments.models import Environment

from .. import charts, lifecycle, picking
from ..choices import PROBED_STATES, STATUS_STYLE, Status
from ..dependencies import children_of, parents_of
from ..forms import AddConnectionForm, KubeconfigImportForm
from ..imports import import_kubeconfig
from ..mentions import read_as
from ..models import Connection, DiscoveredResource, Location, ProbeResult
from ..probing.outcomes import is_partial
from ..probing.rounds import locations_of
from ..table.rows import Beat, LocalTimes, heartbeat
from ..ui import actions_for, visible

HISTORY_PAGE_SIZE = 50  # the timeline of a connection that flapped for a year stays one page
LOCATION_BEATS = 20  # results per location in the Locations card


@login_required
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(visible(request).select_related("credential", "owner"), pk=pk)
    # a tombstone is history: nothing on it changes (no state, no edit, no membership)
    live = connection.status != Status.DELETED
    can_change = live and access.may(request.user, connection, access.CHANGE)
    can_transition = live and access.may(request.user, connection, access.TRANSITION)
    results = list(connection.probe_results.order_by("-checked_at", "-pk")[:20])
    series: dict[str, list] = {}
    day_ago = timezone.now() - timedelta(days=1)
    for sample in connection.samples.filter(scraped_at__gte=day_ago).order_by("scraped_at"):
        series.setdefault(sample.name, []).append((sample.scraped_at, sample.value))
    collected = [
        {"name": name, "current": points[-1][1], "chart": charts.line_svg(points)}
        for name, points in sorted(series.items())
    ]
    history = Paginator(
        connection.history.select_related("user").order_by("-created_at", "-pk"),
        HISTORY_PAGE_SIZE,
    ).get_page(request.GET.get("hpage"))
    read_as(request.user, history)  # each reason as this reader may read it
    # itself first, then the parents this reader may see: none is offered as a new parent (the
    # ids of parents they may not see are never in the page)
    parents = parents_of([connection.pk]).get(connection.pk, [])
    shown_parents = (
        Connection.all_objects.restrict(request.user)
        .filter(pk__in=[p.pk for p in parents])
        .order_by("name")
    )
    visible_parent_ids = [connection.pk, *(p.pk for p in shown_parents)]
    context = {
        "connection": connection,
        "style": STATUS_STYLE[connection.status],
        "actions": actions_for(connection) if can_transition else [],
        "history": history,
        "environments": connection.environments.restrict(request.user),
        "can_change": can_change,
        "can_transition": can_transition,
        # probe now: whoever may act on it, while it is probed at all
        "can_probe": can_transition and connection.status in PROBED_STATES,
        "editable_environment_ids": set(
            Environment.objects.restrict(request.user, "change").values_list("pk", flat=True)
        ),
        "assignable_environments": Environment.objects.restrict(request.user, "change").exclude(
            connections=connection
        ),
        "parents": shown_parents,
        "children": children_of([connection.pk]).restrict(request.user).order_by("name")[:50],
        # the parent picker's first options: any other connection it does not depend on yet
        "parent_exclude": ",".join(str(i) for i in visible_parent_ids),
        "parent_options": (
            picking.choices(request.user, exclude=visible_parent_ids) if can_change else []
        ),
        "children_count": children_of([connection.pk]).restrict(request.user).count(),
        "health": charts.health(connection, request.GET.get("range")),
        "tags": list(connection.tags.values_list("name", flat=True)),
        # the summary reads the results the list shows, never the row's own copy (which the
        # add form's check writes without a result, and a deletion does not clear)
        "last_result": results[0] if results else None,
        "probing": probing_text(connection),
        "results": results,
        "collected": collected,
        "metadata": sorted(
            (k, v) for k, v in connection.metadata.items() if k != "certificate_authority_data"
        ),
    }
    if connection.kind == "kubernetes":
        context["discovered"] = discovered_browser(request, connection)
    context["locations"] = locations_card(connection, results)
    return render(request, "connections/detail.html", context)


def locations_card(connection: Connection, newest: list[ProbeResult]) -> dict | None:
    """Each of the connection's locations with the bar of its last results and its latest
    latency, once it has been probed from locations (``newest``, its last results, name one);
    None otherwise, at no query. Six queries: its locations (``locations_of``), their names,
    and its last LOCATION_BEATS results per location in one read of its (connection,
    -checked_at) index, grouped here."""
    if not any(result.location_id for result in newest):
        return None
    ids = locations_of([connection.pk])[connection.pk]
    names = dict(Location.objects.filter(pk__in=ids).values_list("pk", "name"))
    fields = ("pk", "location_id", "checked_at", "ok", "latency_ms", "status_code", "error_class")
    by_location: dict[int, list] = {pk: [] for pk in names}
    for row in (
        ProbeResult.objects.filter(connection=connection)
        .order_by("-checked_at", "-pk")
        .values_list(*fields, "error")[: LOCATION_BEATS * max(len(names), 1)]
    ):
        if row[1] in by_location and len(by_location[row[1]]) < LOCATION_BEATS:
            by_location[row[1]].append(row)
    local = LocalTimes(timezone.get_current_timezone())
    now = timezone.now().timestamp()
    rows = []
    for pk, name in sorted(names.items(), key=lambda item: item[1]):
        beats = [
            Beat(
                pk=result_pk,
                connection_id=connection.pk,
                checked_at=at.timestamp(),
                ok=ok,
                latency_ms=latency,
                status_code=code,
                error_class=error_class,
                error=error,
                local=local(at.timestamp()),
            )
            for result_pk, _, at, ok, latency, code, error_class, error in reversed(by_location[pk])
        ]
        latest = beats[-1] if beats else None
        rows.append(
            {
                "pk": pk,
                "name": name,
                "bar": heartbeat(beats, length=LOCATION_BEATS, now=now),
                "bar_id": f"loc-hb-{pk}",
                "label": f"Last {len(beats)} probe{'' if len(beats) == 1 else 's'} from {name}: "
                f"{sum(1 for beat in beats if not beat.ok)} failed.",
                "latest": latest,
                "checked_at": by_location[pk][0][2] if latest else None,
            }
        )
    note = connection.locations_note
    return {"rows": rows, "note": note, "partial": is_partial(note)}


def duration(seconds: int) -> str:
    """30 s, 5 min, 2 h, 1 d: the largest unit that says it exactly."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def probing_text(connection: Connection) -> str:
    """What the background health check does with this connection now, as the lifecycle spec
    and ``health.next_probe_time`` decide it: not probed, retried, or probed every N."""
    status = connection.status
    if status == Status.DELETED:
        return "Not probed: it is deleted."
    if status == Status.IGNORED:
        return "Not probed while ignored. Register again runs the reachability check."
    if status == Status.NOT_FOUND:
        return "Not probed while Not Found. Register again runs the reachability check."
    if status == Status.MAINTENANCE:
        return "Not probed during maintenance; probed at once when maintenance ends."
    interval = connection.probe_interval or settings.PROBE_INTERVAL
    retry = min(connection.retry_interval or settings.PROBE_RETRY_INTERVAL, interval)
    if status == Status.DISCONNECTED:
        after = max(settings.PROBE_BACKOFF_AFTER, 1)
        ceiling = max(settings.PROBE_BACKOFF_MAX, interval)
        return (
            f"Probed every {duration(interval)} while down; after {duration(after)} down, less "
            f"and less often (at most every {duration(ceiling)}). One success brings it back."
        )
    threshold = connection.failure_threshold
    failures = connection.consecutive_failures
    if failures:
        probes = "probe" if failures == 1 else "probes"
        return (
            f"Retried every {duration(retry)}: {failures} failed {probes} in a row so far, "
            f"{threshold} in a row leave {connection.get_status_display()}. Probed every "
            f"{duration(interval)} again once it answers."
        )
    return (
        f"Probed every {duration(interval)}; after a failure retried every {duration(retry)}, "
        f"and {threshold} failures in a row leave {connection.get_status_display()}."
    )


RESOURCES_PER_PAGE = 100


def discovered_browser(request: HttpRequest, cluster: Connection) -> dict:
    """What discovery saw in a cluster, filterable by kind and namespace, a page at a time;
    integrable resources link to their connection, with Register where it is open."""
    resources = cluster.discovered_resources.all()
    kind = request.GET.get("rkind", "")
    namespace = request.GET.get("rns", "").replace("\x00", "")[:253]
    if kind in DiscoveredResource.Kind.values:
        resources = resources.filter(kind=kind)
    if namespace:
        resources = resources.filter(namespace=namespace)
    try:
        page = min(max(1, int(request.GET.get("rpage", 1))), 100_000)
    except ValueError:
        page = 1
    start = (page - 1) * RESOURCES_PER_PAGE
    rows = list(resources[start : start + RESOURCES_PER_PAGE + 1])
    more = len(rows) > RESOURCES_PER_PAGE
    rows = rows[:RESOURCES_PER_PAGE]
    connections = {
        c.identity: c
        for c in visible(request)
        .live()
        .filter(identity__in=[r.identity for r in rows if r.identity])
    }
    may_change = access.ids(
        request.user,
        Connection.all_objects,
        [c.pk for c in connections.values()],
        access.TRANSITION,
    )
    for row in rows:
        row.connection = connections.get(row.identity)
        row.can_register = bool(
            row.connection is not None
            and row.connection.pk in may_change
            and Status.REGISTERED in lifecycle.user_targets(row.connection)
        )
    namespaces = (
        cluster.discovered_resources.order_by("namespace")
        .values_list("namespace", flat=True)
        .distinct()
    )
    query = request.GET.copy()
    query.pop("rpage", None)
    return {
        "rows": rows,
        "kind": kind,
        "namespace": namespace,
        "namespaces": namespaces,
        "page": page,
        "more": more,
        "query": query.urlencode(),
        "total": cluster.discovered_resources.count(),
        "forbidden": cluster.metadata.get("discovery_forbidden") or {},
    }


@sensitive_post_parameters("new_credential_secret")
@login_required
def connection_add(request: HttpRequest) -> HttpResponse:
    form = AddConnectionForm(request.POST or None, user=request.user)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    credential = data.get("new_credential")
                    if credential is not None:
                        credential.save()
                    candidate = creating.prepare_manual_connection(
                        name=data["name"],
                        kind=data["kind"],
                        url=data["url"],
                        user=request.user,
                        credential=credential or data.get("credential"),
                        failure_threshold=data["failure_threshold"],
                        probe_interval=data["probe_interval"],
                        retry_interval=data.get("retry_interval"),
                    )
                    outcome = lifecycle.check_reachability(candidate)
                    connection = creating.insert_manual_connection(
                        candidate, outcome, user=request.user, environments=data["environments"]
                    )
            except creating.DuplicateConnection as exc:
                existing = exc.existing
                if visible(request).filter(pk=existing.pk).exists():
                    form.add_error("url", exc.message)
                    form.duplicate_of = existing
                else:  # say so, without naming what the user may not see
                    form.add_error("url", "This endpoint is already tracked by another user.")
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                if outcome.ok:
                    messages.success(request, f"'{connection.name}' is reachable: registered.")
                else:
                    messages.warning(
                        request,
                        f"'{connection.name}' could not be reached: {outcome.said(connection.url)}"
                        " It is recorded as Not Found: register it again when it is up.",
                    )
                return redirect("connections:detail", pk=connection.pk)
        status = 400
    return render(request, "connections/add.html", {"form": form}, status=status)


@sensitive_post_parameters("text")
@never_cache  # the report names what was imported
@login_required
def kubeconfig_import(request: HttpRequest) -> HttpResponse:
    form = KubeconfigImportForm(request.POST or None, request.FILES or None, user=request.user)
    report = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            report = import_kubeconfig(
                form.cleaned_data["document"],
                allow_insecure_tls=form.cleaned_data["allow_insecure_tls"],
                user=request.user,
                environments=form.cleaned_data["environments"],
                visible=visible(request),
            )
            # imported: the document is stored (as credentials), the box starts empty again
            form = KubeconfigImportForm(user=request.user)
        else:
            status = 400
    return render(
        request, "connections/import.html", {"form": form, "report": report}, status=status
    )
