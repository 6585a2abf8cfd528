"""The connection pages. Every lookup goes through ``restrict(user)``: what a user may not see
answers 404; state changes are POST and go through ``connections.lifecycle``."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_tables2 import RequestConfig

from environments.actions import change_membership
from environments.models import Environment

from . import charts, lifecycle
from .choices import BULK_ACTIONS, STATUS_STYLE, Status, user_action
from .dependencies import children_of, parents_of
from .filters import ConnectionFilterSet
from .forms import AddConnectionForm, BulkActionForm, KubeconfigImportForm, attach_errors
from .imports import import_kubeconfig
from .lifecycle import editable_ids
from .models import Connection, DiscoveredResource
from .tables import ConnectionTable

PAGE_SIZES = (25, 50, 100, 200)


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


def _page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("per_page", 50))
    except ValueError:
        return 50
    return size if size in PAGE_SIZES else 50


def _summary(request: HttpRequest, counts: dict[str, int]) -> list[dict]:
    """The summary strip: a count and a filter link per state."""
    strip = []
    for status, label in Status.choices:
        if status == Status.DELETED:
            continue
        query = request.GET.copy()
        query.setlist("status", [status])
        query.pop("page", None)
        strip.append(
            {
                "status": status,
                "label": label,
                "count": counts.get(status, 0),
                "style": STATUS_STYLE[status],
                "query": query.urlencode(),
            }
        )
    return strip


class CountedPaginator(Paginator):
    """A paginator told its count: the per-state counts already hold it, no COUNT(*) again."""

    def __init__(self, object_list, per_page, *, known_count: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.known_count = known_count

    @property
    def count(self) -> int:
        return self.known_count


def table_context(
    request: HttpRequest, *, base=None, table_url: str | None = None, order_by=None
) -> dict:
    """The table component: ``base`` scopes it (an environment's page), ``table_url`` is where
    its fragment refreshes from."""
    base = visible(request) if base is None else base
    filterset = ConnectionFilterSet(request.GET, queryset=base, request=request)
    counts: dict[str, int] = {}
    if filterset.is_valid():
        queryset = filterset.qs
        counts = filterset.counts_by_status()
    else:
        queryset = Connection.objects.none()
    chosen = filterset.form.cleaned_data.get("status") if filterset.is_valid() else None
    shown = chosen or [s for s in Status.values if s != Status.DELETED]
    # environment names only from environments the user may see
    environments = Environment.objects.restrict(request.user).order_by("name")
    table = ConnectionTable(
        queryset.prefetch_related(Prefetch("environments", queryset=environments)),
        order_by=order_by,
    )
    table.visible_environments = environments
    RequestConfig(request, paginate=False).configure(table)  # the order, from ?sort=
    per_page, total = _page_size(request), sum(counts.get(s, 0) for s in shown)
    last_page = max(1, -(-total // per_page))
    try:
        number = min(max(1, int(request.GET.get("page", 1))), last_page)
    except ValueError:
        number = 1
    table.paginate(CountedPaginator, per_page=per_page, page=number, known_count=total)
    records = list(table.page.object_list.data) if table.page else []
    can_change = editable_ids(request.user, [r.pk for r in records])
    rows = [
        {
            "connection": record,
            "style": STATUS_STYLE[record.status],
            "actions": actions_for(record) if record.pk in can_change else [],
            "environments": [e.name for e in record.environments.all()],
        }
        for record in records
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "filterset": filterset,
        "table": table,
        "rows": rows,
        "summary": _summary(request, counts),
        "query": query.urlencode(),
        "current_query": request.GET.urlencode(),
        "page_sizes": PAGE_SIZES,
        "page_size": _page_size(request),
        "bulk_environments": Environment.objects.restrict(request.user, "change"),
        "bulk_actions": BULK_ACTIONS,
        "table_url": table_url or reverse("connections:list"),
    }


@login_required
def connection_list(request: HttpRequest) -> HttpResponse:
    context = table_context(request)
    status = 200 if context["filterset"].is_valid() else 400
    return render_table_page(request, "connections/list.html", context, status)


def render_table_page(request: HttpRequest, template: str, context: dict, status: int = 200):
    """The whole page, or just the table fragment for htmx (not for a history restore, which
    needs the whole page); caches keep the two apart."""
    fragment = request.htmx and not request.htmx.history_restore_request
    response = render(
        request, "connections/_table.html" if fragment else template, context, status=status
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


HISTORY_PAGE_SIZE = 50  # the timeline of a connection that flapped for a year stays one page


@login_required
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(visible(request).select_related("credential", "owner"), pk=pk)
    can_change = bool(editable_ids(request.user, [connection.pk]))
    results = list(connection.probe_results.order_by("-checked_at")[:200])
    series: dict[str, list] = {}
    day_ago = timezone.now() - timedelta(days=1)
    for sample in connection.samples.filter(scraped_at__gte=day_ago).order_by("scraped_at"):
        series.setdefault(sample.name, []).append((sample.scraped_at, sample.value))
    collected = [
        {"name": name, "current": points[-1][1], "chart": charts.line_svg(points)}
        for name, points in sorted(series.items())
    ]
    rollups = list(connection.rollups.order_by("-hour")[: 24 * 14])
    context = {
        "connection": connection,
        "style": STATUS_STYLE[connection.status],
        "actions": actions_for(connection) if can_change else [],
        "history": Paginator(
            connection.history.select_related("user").order_by("-created_at", "-pk"),
            HISTORY_PAGE_SIZE,
        ).get_page(request.GET.get("hpage")),
        "environments": connection.environments.restrict(request.user),
        "can_change": can_change,
        "editable_environment_ids": set(
            Environment.objects.restrict(request.user, "change").values_list("pk", flat=True)
        ),
        "assignable_environments": Environment.objects.restrict(request.user, "change").exclude(
            connections=connection
        ),
        "parents": Connection.all_objects.restrict(request.user)
        .filter(pk__in=[p.pk for p in parents_of([connection.pk]).get(connection.pk, [])])
        .order_by("name"),
        "children": children_of([connection.pk]).restrict(request.user).order_by("name")[:50],
        "children_count": children_of([connection.pk]).restrict(request.user).count(),
        "uptime": charts.uptime(results, rollups),
        "latency_chart": charts.latency_svg(results, rollups),
        "results": results[:20],
        "collected": collected,
        "metadata": sorted(
            (k, v) for k, v in connection.metadata.items() if k != "certificate_authority_data"
        ),
    }
    if connection.kind == "kubernetes":
        context["discovered"] = discovered_browser(request, connection)
    return render(request, "connections/detail.html", context)


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
    may_change = editable_ids(request.user, [c.pk for c in connections.values()])
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


def report_messages(request: HttpRequest, report: lifecycle.BulkReport) -> None:
    """A bulk action's result as messages: what changed, then each refusal by name."""
    if report.changed:
        messages.success(request, report.summary())
    for name, why in report.refused:
        messages.warning(request, f"'{name}': {why}")


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
def connection_bulk(request: HttpRequest) -> HttpResponse:
    fallback = reverse("connections:list")
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _done(request, fallback, 400)
    data = form.cleaned_data
    if data["all_matching"]:
        filters = QueryDict(request.POST.get("query", ""))
        filterset = ConnectionFilterSet(filters, queryset=visible(request), request=request)
        if not filterset.is_valid():
            messages.error(request, "The table's filters are not valid.")
            return _done(request, fallback, 400)
        connections = list(filterset.qs)
    else:
        connections = list(visible(request).filter(pk__in=data["ids"]))
        if len(connections) != len(set(data["ids"])):
            return render(request, "404.html", status=404)
    verb, value = data["action"]
    if verb == "transition":
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
                    candidate = lifecycle.prepare_manual_connection(
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
                    connection = lifecycle.insert_manual_connection(
                        candidate, outcome, user=request.user, environments=data["environments"]
                    )
            except lifecycle.DuplicateConnection as exc:
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
                        f"'{connection.name}' could not be reached ({outcome.summary}): "
                        "it is recorded as Not Found. Retry registration when it is up.",
                    )
                return redirect("connections:detail", pk=connection.pk)
        status = 400
    return render(request, "connections/add.html", {"form": form}, status=status)


@sensitive_post_parameters("text")
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
        else:
            status = 400
    return render(
        request, "connections/import.html", {"form": form, "report": report}, status=status
    )
