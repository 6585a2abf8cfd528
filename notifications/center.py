"""The in-app notification center's one rule: which events a user sees, which they watch, and
how many are unread on their bell. The pages, the bell and the API all ask here."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models import Max, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from connections.models import Connection
from core import access, keptsql
from environments.models import Environment

from .choices import Category
from .models import Event, ReadMark, Watch

# the changes that ring the bell: something broke, or it is over
BELL_CATEGORIES = (Category.DISCONNECTED, Category.NOT_FOUND, Category.AUTH, Category.RECOVERY)
BELL_CAP = 99  # the bell shows "99+" past this; counting stops there


def visible_events(user: Any) -> QuerySet[Event]:
    """Events of the connections the user may see, deleted ones' (tombstones) included."""
    if not access.active(user):
        return Event.objects.none()
    if access.sees_all(user, Connection):
        return Event.objects.all()
    visible = Connection.all_objects.restrict(user).order_by().values("pk")
    return Event.objects.filter(connection_id__in=Subquery(visible))


def watched_connection_ids(user: Any) -> QuerySet:
    """A subquery of the ids of connections the user watches, directly or through a watched
    environment (visibility is applied by ``visible_events``, not here)."""
    watches = Watch.objects.filter(user_id=user.pk)
    via_environments = Environment.connections.through.objects.filter(
        environment_id__in=watches.filter(environment__isnull=False).values("environment_id")
    ).values("connection_id")
    return (
        Connection.all_objects.filter(
            Q(pk__in=watches.filter(connection__isnull=False).values("connection_id"))
            | Q(pk__in=via_environments)
        )
        .order_by()
        .values("pk")
    )


def _read_up_to(user: Any) -> Coalesce:
    return Coalesce(Subquery(ReadMark.objects.filter(user_id=user.pk).values("read_up_to")[:1]), 0)


def bell_events(user: Any) -> QuerySet[Event]:
    """The events that ring the user's bell: the failures and recoveries of connections they
    own or watch (and may still see)."""
    if user is None or not user.is_authenticated:
        return Event.objects.none()
    return visible_events(user).filter(
        Q(connection__owner_id=user.pk) | Q(connection_id__in=watched_connection_ids(user)),
        category__in=BELL_CATEGORIES,
    )


def unread_count(user: Any, cap: int = BELL_CAP + 1) -> int:
    """Bell events after the user's read mark, counted in one query (at most ``cap``). The
    bell is on every page: its SQL is built once per process and user's rights (building it
    cost some 5 ms, running it well under 1)."""
    if user is None or not user.is_authenticated:
        return 0
    (count,) = keptsql.fetch_one(f"bell-unread-{int(cap)}", user, _unread_query(int(cap)))
    return count


def _unread_query(cap: int):
    def build(user: Any, using: str) -> tuple[str, tuple]:
        unread = bell_events(user).filter(id__gt=_read_up_to(user)).order_by().values("pk")
        try:
            sql, params = keptsql.compiled(unread.using(using)[:cap], using)
        except EmptyResultSet:  # a user who may see nothing (inactive)
            return "SELECT 0", ()
        return f"SELECT COUNT(*) FROM ({sql}) s", params

    return build


def read_up_to(user: Any) -> int:
    mark = ReadMark.objects.filter(user_id=user.pk).values_list("read_up_to", flat=True).first()
    return mark or 0


def mark_all_read(user: Any) -> int:
    """Move the user's read mark to the newest event they may see (never backwards)."""
    newest = visible_events(user).aggregate(newest=Max("id"))["newest"] or 0
    mark, created = ReadMark.objects.get_or_create(user=user, defaults={"read_up_to": newest})
    if not created and newest > mark.read_up_to:
        ReadMark.objects.filter(pk=mark.pk, read_up_to__lt=newest).update(read_up_to=newest)
    return max(newest, mark.read_up_to)


def is_watching(user: Any, *, connection: Any = None, environment: Any = None) -> bool:
    return Watch.objects.filter(
        user_id=user.pk,
        connection_id=getattr(connection, "pk", None),
        environment_id=getattr(environment, "pk", None),
    ).exists()


def set_watch(user: Any, watching: bool, *, connection: Any = None, environment: Any = None):
    """Watch or stop watching one connection or environment (the caller checked visibility)."""
    target = {"connection": connection} if connection is not None else {"environment": environment}
    if watching:
        Watch.objects.get_or_create(user=user, **target)
    else:
        Watch.objects.filter(user=user, **target).delete()
