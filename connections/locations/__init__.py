"""The locations page (docs/locations.md, "The locations page"): every signed-in user reads the
locations and their state; active staff add and remove them. One rule for what the page offers
and what its POSTs accept (``manages_locations``), and the changes themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count

from core import access

from ..models import Connection, Location, ProbeRound, queue_of


def sees_locations(user: Any) -> bool:
    """Every active signed-in user: names, descriptions and states are no secret, and whoever
    picks a connection's locations wants to know which ones are online."""
    return access.active(user)


def manages_locations(user: Any) -> bool:
    """Active staff (superusers included) add and remove locations: a location takes a share of
    every round, for every connection that did not choose others."""
    return access.active(user) and bool(user.is_staff or user.is_superuser)


def worker_command(name: str) -> str:
    """The command that starts a worker of location ``name`` (it joins at its first
    heartbeat)."""
    return (
        f"PROBE_LOCATION={name} celery -A meshplay worker -Q {queue_of(name)} "
        f"--pool prefork -n {name}@%h"
    )


def chosen_by(user: Any) -> dict[int, int]:
    """Location id -> how many of the connections ``user`` may see chose it (one query)."""
    through = Connection.locations.through.objects.filter(
        connection__in=Connection.objects.restrict(user).values("pk")
    )
    rows = through.order_by().values("location_id").annotate(n=Count("connection_id"))
    return {row["location_id"]: row["n"] for row in rows}


class Taken(Exception):
    """Another location has the name (added meanwhile)."""


def add_location(name: str, description: str = "") -> Location:
    """A new location (``name`` validated by the caller's form); Taken when the name is used."""
    try:
        with transaction.atomic():
            return Location.objects.create(name=name, description=description)
    except IntegrityError:
        raise Taken(name) from None


@dataclass(frozen=True)
class Removed:
    name: str
    chosen_by: int  # connections that had chosen it (all of them, not only those one sees)
    last: bool  # no location is left: probing is as it was before locations


def remove_location(pk: int) -> Removed | None:
    """Remove location ``pk`` (None when there is none). Its workers' rows and the connections'
    and environments' choices of it go with it; its probe results stay in the history as they
    were (the removed location's id: the results table is never rewritten)."""
    with transaction.atomic():
        location = Location.objects.select_for_update().filter(pk=pk).first()
        if location is None:
            return None
        chosen = location.connections.count()
        location.delete()
        last = not Location.objects.exists()
        if last:  # probed from one place again: no note of several, no round, stays behind
            Connection.all_objects.exclude(locations_note="").update(locations_note="")
            ProbeRound.objects.all().delete()
    return Removed(location.name, chosen, last)
