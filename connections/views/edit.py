"""Editing a connection's settings: the rules of ``connections.editing`` (those of the add form
and the API), and a save that never silently undoes another one saved meanwhile.

- Who may: exactly who may change the connection (``core.access``, action ``change``); someone
  who can only see it gets 403 with a message, someone who cannot see it 404. A deleted
  connection is a tombstone: 409, nothing to edit.
- What an edit does, as the API's: the state stays; a new URL or credential is probed at once
  from a clean count (probed states only) and the server-owned cluster identity is forgotten;
  a new interval applies from the next probe. The page says so for the connection's state.
- Two tabs: a save whose signed snapshot (``editing.snapshot``) is not what is stored now is a
  409 that shows what changed and keeps the user's values; saving again then applies them.
  Environments are applied as the ticks the user changed on the page (the environment app's
  ``change_membership``), so a membership changed elsewhere meanwhile is not undone; only the
  environments the user may change are listed or touched.
- Locations ("Probed from", "Quorum") show once a location exists; they are part of the
  snapshot, so a choice saved meanwhile in another tab is not undone either.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache

from connections.grouping import change_membership
from core import access
from core.forms import attach_errors
from environments.models import Environment

from .. import editing
from ..choices import PROBED_STATES, Status, quorum_text
from ..forms import EditConnectionForm
from ..models import Connection
from ..tagging import change_tags
from ..ui import visible

# The page's fields in the order its "what changed" message names them.
LABELS = {
    "name": "name",
    "url": "URL",
    "credential_id": "credential",
    "failure_threshold": "failure threshold",
    "probe_interval": "probe interval",
    "retry_interval": "retry interval",
    "quorum": "quorum",
    "locations": "probed from",
}
SECONDS = ("probe_interval", "retry_interval")


def _environment_ids(connection: Connection, editable: set[int]) -> list[int]:
    """The connection's environments among those the user may change (the others are not
    shown, not compared and never touched)."""
    ids = connection.environments.values_list("pk", flat=True)
    return sorted(pk for pk in ids if pk in editable)


def _shown(connection: Connection, name: str) -> str:
    if name == "credential_id":
        return f"'{connection.credential.name}'" if connection.credential_id else "none"
    if name == "quorum":
        return quorum_text(connection.quorum)
    if name == "locations":
        names = sorted(connection.locations.values_list("name", flat=True))
        return ", ".join(names) if names else "its default locations"
    value = getattr(connection, name)
    return (
        f"{value} s" if name in SECONDS else f"'{value}'" if isinstance(value, str) else str(value)
    )


def _refuse(request: HttpRequest, connection: Connection, message: str, status: int):
    return render(
        request,
        "connections/edit.html",
        {"connection": connection, "refusal": message},
        status=status,
    )


def _what_happens(connection: Connection) -> str:
    """What an edit does to the state and the probes, as the API's edit does it."""
    state = connection.get_status_display()
    if connection.status in PROBED_STATES:
        return (
            f"Editing keeps the state ({state}). A new URL or credential is probed at once, from a "
            "clean failure count, and what was learned from the old endpoint (its cluster "
            "identity) is forgotten. A new probe or retry interval applies from the next probe."
        )
    if connection.status in (Status.NOT_FOUND, Status.IGNORED):
        which = "A Not Found" if connection.status == Status.NOT_FOUND else "An ignored"
        return (
            f"Editing keeps the state ({state}). {which} connection is not probed: after "
            "changing its URL, use Register again on its page to check it."
        )
    return (
        f"Editing keeps the state ({state}). It is not probed while in maintenance; the "
        "settings you save apply when maintenance ends, when it is probed at once."
    )


@never_cache
@login_required
def connection_edit(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(visible(request).select_related("credential"), pk=pk)
    if not access.may(request.user, connection, access.CHANGE):
        return _refuse(
            request,
            connection,
            f"You may view '{connection.name}' but not change it: its owner, or an editor of "
            "one of its environments, can.",
            403,
        )
    if connection.status == Status.DELETED:
        return _refuse(
            request,
            connection,
            f"'{connection.name}' is deleted: a deleted connection cannot be changed. Its page "
            "keeps its history.",
            409,
        )
    editable = set(
        Environment.objects.restrict(request.user, "change").values_list("pk", flat=True)
    )
    ticked = _environment_ids(connection, editable)
    tags = list(connection.tags.values_list("name", flat=True))
    initial = {
        "name": connection.name,
        "url": connection.url,
        "credential": connection.credential_id,
        "environments": ticked,
        "environments_shown": " ".join(map(str, ticked)),
        "failure_threshold": connection.failure_threshold,
        "probe_interval": connection.probe_interval,
        "retry_interval": connection.retry_interval,
        "tags": ", ".join(tags),
        "tags_shown": " ".join(tags),
        "locations": list(connection.locations.values_list("pk", flat=True)),
        "quorum": connection.quorum,
        "version": editing.sign_snapshot(editing.snapshot(connection)),
    }
    form = EditConnectionForm(
        request.POST if request.method == "POST" else None,  # an empty POST is still bound
        initial=initial,
        connection=connection,
        user=request.user,
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                outcome = _save(request, connection, form, editable)
            except _Conflict as exc:
                status = 409
                form.conflict = exc.changed
                form.data = form.data.copy()
                form.data["version"] = editing.sign_snapshot(exc.current)
            except _Gone:
                connection.refresh_from_db()
                return _refuse(
                    request,
                    connection,
                    f"'{connection.name}' was deleted while you were editing it: nothing was "
                    "saved.",
                    409,
                )
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                for level, text in outcome:
                    messages.add_message(request, level, text)
                return redirect("connections:detail", pk=connection.pk)
    context = {"connection": connection, "form": form, "what_happens": _what_happens(connection)}
    return render(request, "connections/edit.html", context, status=status)


class _Conflict(Exception):
    def __init__(self, changed: list[str], current: dict[str, Any]) -> None:
        super().__init__("changed meanwhile")
        self.changed = changed
        self.current = current


class _Gone(Exception):
    pass


def _save(
    request: HttpRequest, stale: Connection, form: EditConnectionForm, editable: set[int]
) -> list[tuple[int, str]]:
    """Compare-and-save under the row's lock: refused (``_Conflict``) if the page's snapshot is
    not what is stored now; the messages to show otherwise."""
    data = form.cleaned_data
    with transaction.atomic():
        connection = (
            Connection.all_objects.select_for_update(of=("self",))
            .select_related("credential")
            .get(pk=stale.pk)
        )
        if connection.status == Status.DELETED:
            raise _Gone
        current = editing.snapshot(connection)
        changed_meanwhile = editing.changed_since(data["version"], current)
        if changed_meanwhile:
            raise _Conflict(
                [f"{LABELS[name]} is now {_shown(connection, name)}" for name in changed_meanwhile],
                current,
            )
        before = {name: _shown(connection, name) for name in editing.SNAPSHOT_FIELDS}
        # "Probed from" and "Quorum" only when the page showed them (a location exists)
        probing = (
            {"locations": data["locations"], "quorum": data["quorum"]}
            if form.offers_locations
            else {}
        )
        editing.update_connection(
            connection,
            user=request.user,
            name=data["name"],
            url=data["url"],
            credential=data["credential"],
            failure_threshold=data["failure_threshold"],
            probe_interval=data["probe_interval"],
            retry_interval=data["retry_interval"],
            **probing,
        )
        # only what the user added or removed on the page: a tag added meanwhile stays
        shown_tags = set(data["tags_shown"])
        added_tags = [t for t in data["tags"] if t not in shown_tags]
        removed_tags = [t for t in shown_tags if t not in data["tags"]]
        if added_tags or removed_tags:
            change_tags(connection, added_tags, removed_tags)
        # only what the user ticked or unticked on the page: a membership changed elsewhere
        # meanwhile stays as it is now
        chosen = {environment.pk: environment for environment in data["environments"]}
        shown = data["environments_shown"] & editable
        now = set(_environment_ids(connection, editable))
        added = [chosen[pk] for pk in chosen if pk not in shown and pk not in now]
        removed = list(Environment.objects.filter(pk__in=(shown - set(chosen)) & now))
        # the environment app's rule, as its own page and the API apply it
        for environment in added:
            change_membership(environment, request.user, [connection], assign=True)
        for environment in removed:
            change_membership(environment, request.user, [connection], assign=False)
    after = {name: _shown(connection, name) for name in editing.SNAPSHOT_FIELDS}
    changes = [
        f"{LABELS[name]} {before[name]} → {after[name]}"
        for name in editing.SNAPSHOT_FIELDS
        if after[name] != before[name]
    ]
    changes += [f"tagged '{tag}'" for tag in added_tags]
    changes += [f"untagged '{tag}'" for tag in sorted(removed_tags)]
    changes += [f"added to '{environment.name}'" for environment in added]
    changes += [f"removed from '{environment.name}'" for environment in removed]
    if not changes:
        return [(messages.INFO, f"'{connection.name}': nothing changed.")]
    result = [(messages.SUCCESS, f"Saved '{connection.name}': {'; '.join(changes)}.")]
    if any(before[name] != after[name] for name in ("url", "credential_id")):
        result.append((messages.INFO, _after_endpoint_change(connection)))
    return result


def _after_endpoint_change(connection: Connection) -> str:
    state = connection.get_status_display()
    if connection.status in PROBED_STATES:
        return f"The new endpoint is probed now; the state stays {state} until a probe decides."
    if connection.status in (Status.NOT_FOUND, Status.IGNORED):
        return f"It stays {state} and is not probed: Register again checks the new endpoint."
    return f"It stays {state} and is not probed until maintenance ends."
