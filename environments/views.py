"""Environment pages: a group of connections and credentials, shared with members by role.

Non-members get 404 everywhere; viewers see and change nothing; editors transition, assign and
edit; only the owner manages members (chosen by name: ``picking``) and deletes. Deleting an
environment deletes nothing else.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from connections.choices import BULK_ACTIONS, STATUS_STYLE, Status
from connections.grouping import change_membership, group_transition
from connections.models import Connection
from connections.table import render_table_page, table_context
from connections.table.columns import shown_columns
from connections.ui import back, clean_reason, report_messages, visible
from core import access
from credentials.models import Credential
from live.conditional import refreshable

from . import picking
from .forms import ConnectionIdsForm, CredentialIdForm, EnvironmentForm, MemberForm, MemberIdForm
from .models import Environment, EnvironmentMembership


def _environment(request: HttpRequest, pk: int, action: str = "view") -> tuple[Environment, bool]:
    """The environment (404 unless the user may see it) and whether ``action`` is theirs:
    "change" for editors and the owner, "own" for the owner alone."""
    environment = get_object_or_404(Environment.objects.restrict(request.user), pk=pk)
    return environment, action == access.VIEW or access.may(request.user, environment, action)


def _forbidden(request: HttpRequest, environment: Environment, what: str) -> HttpResponse:
    messages.error(request, f"You may view '{environment.name}' but not {what}.")
    response = redirect("environments:detail", pk=environment.pk)
    response.status_code = 303
    return response


def _bad_input(request: HttpRequest, environment: Environment, form) -> HttpResponse:
    """A form's refusal: 400, its messages shown on the environment's page (or, to htmx, the
    messages alone); nothing changed."""
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    if request.htmx:
        return render(request, "_messages.html", status=400)
    response = environment_detail(request, environment.pk)
    response.status_code = 400
    return response


@login_required
def environment_list(request: HttpRequest) -> HttpResponse:
    environments = list(
        Environment.objects.restrict(request.user)
        .select_related("owner")
        .prefetch_related("memberships__user")
        .annotate(credential_count=Count("credentials", distinct=True))
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        Environment.connections.through.objects.filter(environment__in=environments)
        .values_list("environment_id", "connection__status")
        .annotate(n=Count("id"))
    )
    for environment_id, status, n in rows:
        counts[environment_id][status] = n
    for environment in environments:
        environment.state_counts = [
            {
                "status": s,
                "label": label,
                "count": counts[environment.pk][s],
                "style": STATUS_STYLE[s],
            }
            for s, label in Status.choices
            if counts[environment.pk].get(s)
        ]
    return render(request, "environments/list.html", {"environments": environments})


@login_required
@refreshable(also=shown_columns)
def environment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    environment, _ = _environment(request, pk)
    url = reverse("environments:detail", args=[pk])
    context = table_context(
        request,
        base=visible(request).filter(environments=environment),
        table_url=url,
        order_by=("status", "name"),
    )
    # "all rows matching the filters" on this page stays inside this environment
    # (within_environment, not environment=: with an environment filter of the user's own that
    # would be either environment, where the page shows both)
    context["query"] = "&".join(
        filter(None, [context["query"], f"within_environment={environment.pk}"])
    )
    can_change = access.may(request.user, environment, access.CHANGE)
    is_owner = access.may(request.user, environment, access.OWN)
    context.update(
        {
            "environment": environment,
            "can_change": can_change,
            "is_owner": is_owner,
            "members": environment.memberships.select_related("user").order_by("user__username"),
            "credentials": environment.credentials.select_related("owner").order_by("name"),
            # taking a credential out needs it to be one the user may see (staff may not)
            "visible_credential_ids": access.ids(
                request.user,
                Credential.objects,
                environment.credentials.values_list("pk", flat=True),
            ),
            "addable": (
                Connection.objects.restrict(request.user, "change")
                .exclude(environments=environment)
                .order_by("name")[:50]  # the picker's first options: searching finds the rest
                if can_change
                else []
            ),
            "addable_credentials": (
                Credential.objects.filter(owner=request.user)
                .exclude(environments=environment)
                .order_by("name")
                if can_change
                else []
            ),
            # the members picker's first options: searching finds the rest
            "member_options": list(picking.addable(environment)) if is_owner else [],
        }
    )
    return render_table_page(request, "environments/detail.html", context)


@login_required
def environment_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    environment = None
    if pk is not None:
        environment, allowed = _environment(request, pk, "change")
        if not allowed:
            return _forbidden(request, environment, "edit it")
    owner = environment.owner if environment else request.user
    form = EnvironmentForm(request.POST or None, instance=environment, owner=owner)
    if request.method == "POST":
        if form.is_valid():
            environment = form.save(commit=False)
            if environment.pk is None:
                environment.owner = request.user
            environment.save()
            form.save_m2m()  # its default locations
            messages.success(request, f"Environment '{environment.name}' saved.")
            return redirect("environments:detail", pk=environment.pk)
        return render(request, "environments/form.html", {"form": form}, status=400)
    return render(request, "environments/form.html", {"form": form, "environment": environment})


@login_required
@require_POST
def environment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    environment, allowed = _environment(request, pk, "own")
    if not allowed:
        return _forbidden(request, environment, "delete it (only its owner may)")
    name = environment.name
    environment.delete()  # memberships go with it; connections and credentials stay
    messages.success(
        request, f"Environment '{name}' deleted; its connections and credentials stay."
    )
    return redirect("environments:list")


@login_required
@require_POST
def environment_transition(request: HttpRequest, pk: int) -> HttpResponse:
    """Act on the group: one transition on every connection of the environment it fits. The
    page no longer offers it (its table's bulk bar is its one place for actions, "all rows
    matching the filters" the whole environment); the API's ``transition`` is the same."""
    environment, allowed = _environment(request, pk, "change")
    if not allowed:
        return _forbidden(request, environment, "change its connections")
    target = request.POST.get("to", "")
    if target not in {value for value, _ in BULK_ACTIONS}:
        messages.error(request, f"Unknown action '{target}'.")
        return redirect("environments:detail", pk=pk)
    report = group_transition(
        environment, request.user, target, clean_reason(request.POST.get("reason"))
    )
    report_messages(request, report)
    if not report.changed and not report.refused:
        messages.info(request, "The environment has no connections.")
    return redirect("environments:detail", pk=pk)


@login_required
@require_POST
def environment_connections(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign or remove connections (ids) from the environment page or a connection page."""
    environment, allowed = _environment(request, pk, "change")
    if not allowed:
        return _forbidden(request, environment, "assign connections")
    form = ConnectionIdsForm(request.POST)
    if not form.is_valid():
        return _bad_input(request, environment, form)
    ids = form.cleaned_data["connection"]
    connections = list(Connection.objects.restrict(request.user).filter(pk__in=ids))
    if len(connections) != len(set(ids)):
        return render(request, "404.html", status=404)
    report = change_membership(
        environment, request.user, connections, assign=not request.POST.get("remove")
    )
    report_messages(request, report)
    return back(request, reverse("environments:detail", args=[pk]))


@login_required
@require_POST
def environment_credentials(request: HttpRequest, pk: int) -> HttpResponse:
    """Share one of your credentials through the environment, or stop sharing it."""
    environment, allowed = _environment(request, pk, "change")
    if not allowed:
        return _forbidden(request, environment, "share credentials")
    form = CredentialIdForm(request.POST)
    if not form.is_valid():
        return _bad_input(request, environment, form)
    # taking one out is a change of the environment (of what it shares); sharing one is the
    # credential owner's act
    credential = get_object_or_404(
        Credential.objects.restrict(request.user), pk=form.cleaned_data["credential"]
    )
    if request.POST.get("remove"):
        environment.credentials.remove(credential)
        messages.success(
            request, f"'{credential.name}' is no longer shared in '{environment.name}'."
        )
    elif not access.may(request.user, credential, access.CHANGE):
        messages.error(request, "You may share only your own credentials.")
    else:
        environment.credentials.add(credential)
        messages.success(request, f"'{credential.name}' is shared in '{environment.name}'.")
    return redirect("environments:detail", pk=pk)


@login_required
@require_GET
def environment_member_options(request: HttpRequest, pk: int) -> HttpResponse:
    """The members picker's options (GET ?q=…): the users who may be added, found by name; for
    whoever manages the members only (others who see the environment: 403, the rest: 404)."""
    environment, allowed = _environment(request, pk, "own")
    if not allowed:
        return render(request, "environments/_member_options.html", {"refused": True}, status=403)
    found = list(picking.addable(environment, request.GET.get("q", "")))
    return render(request, "environments/_member_options.html", {"options": found})


@login_required
@require_POST
def environment_members(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner adds a member (chosen by name in the picker, or by username) with a role,
    changes a member's role, or removes a member."""
    environment, allowed = _environment(request, pk, "own")
    if not allowed:
        return _forbidden(request, environment, "manage its members")
    if request.POST.get("remove"):
        removal = MemberIdForm(request.POST)
        if not removal.is_valid():
            return _bad_input(request, environment, removal)
        deleted, _ = EnvironmentMembership.objects.filter(
            environment=environment, pk=removal.cleaned_data["remove"]
        ).delete()
        if deleted:
            messages.success(request, "Member removed: their access is gone.")
        else:
            messages.error(request, "That member is not in the environment (any more).")
        return redirect("environments:detail", pk=pk)
    form = MemberForm(request.POST, environment=environment)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("environments:detail", pk=pk)
    user, role = form.cleaned_data["member"], form.cleaned_data["role"]
    EnvironmentMembership.objects.update_or_create(
        environment=environment, user=user, defaults={"role": role}
    )
    article = "an" if role[:1] in "aeiou" else "a"
    messages.success(request, f"{user.get_username()} is {article} {role} of '{environment.name}'.")
    return redirect("environments:detail", pk=pk)
