"""Dependencies between connections: who depends on whom, and what a parent's outage means.

A connection's parents are the ones a user set (``Dependency`` rows) and, for a discovered
connection, its cluster. A parent's outage never changes a child's state: children keep being
probed and keep their true state, but a child's failure while a parent is down names the parent
in its reason (``parent_note``) and is reported inside the parent's notification, not on its own.
No cycles: ``add_parent`` refuses an edge that would close one, under a lock so that two edits at
once cannot close one together.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection as db
from django.db import transaction

from ..choices import Status
from ..mentions import Said, naming
from ..models import Connection, Dependency

# A parent in one of these states is "down" for its children.
DOWN_STATES = (Status.DISCONNECTED, Status.NOT_FOUND, Status.MAINTENANCE)
_LOCK_KEY = 0x444550454E44  # "DEPEND"
MAX_DEPTH = 50


def parents_of(ids: Any) -> dict[int, list[Connection]]:
    """child id → its parents (set by users, and the cluster of a discovered one): two queries."""
    ids = set(ids)
    found: dict[int, list[Connection]] = defaultdict(list)
    if not ids:
        return found
    links = Dependency.objects.filter(child_id__in=ids).select_related("parent")
    for link in links:
        found[link.child_id].append(link.parent)
    clusters = Connection.all_objects.filter(pk__in=ids, cluster__isnull=False).select_related(
        "cluster"
    )
    for child in clusters:
        if child.cluster not in found[child.pk]:
            found[child.pk].append(child.cluster)
    return found


def down_parent(parents: list[Connection]) -> Connection | None:
    return next((p for p in parents if p.status in DOWN_STATES), None)


def down_parents(ids: Any) -> dict[int, Connection]:
    """Of ``ids``, those with a parent down now: id → that parent (two queries, none if empty)."""
    found = {}
    for child, parents in parents_of(ids).items():
        parent = down_parent(parents)
        if parent is not None:
            found[child] = parent
    return found


def parent_note(parent: Connection) -> Said:
    """The note on a child's failure: the parent by name, to readers who may see it."""
    state = parent.get_status_display()
    return naming(
        "connection",
        parent.pk,
        f"parent {parent.name} is {state}",
        f"a connection it depends on is {state}",
    )


def children_of(ids: Any):
    """The connections that depend on any of ``ids`` (set by users, or discovered in them)."""
    from django.db.models import Q

    explicit = Dependency.objects.filter(parent_id__in=ids).values("child_id")
    return Connection.objects.filter(Q(pk__in=explicit) | Q(cluster_id__in=ids))


def _ancestors(start: int) -> set[int]:
    """Every connection ``start`` depends on, transitively; ValidationError when the chain is
    deeper than MAX_DEPTH (the search must finish for "no cycle" to be true)."""
    seen: set[int] = set()
    frontier = {start}
    for _ in range(MAX_DEPTH):
        parents = parents_of(frontier)
        frontier = {p.pk for ps in parents.values() for p in ps} - seen
        if not frontier:
            return seen
        seen |= frontier
    raise ValidationError(
        {"parent": f"Dependency chains are at most {MAX_DEPTH} deep; this one would be deeper."}
    )


def add_parent(user: Any, child: Connection, parent: Connection) -> Dependency:
    """Make ``child`` depend on ``parent``: the user must be able to change the child and see
    the parent; refused if it would close a cycle."""
    if not Connection.objects.restrict(user, "change").filter(pk=child.pk).exists():
        raise PermissionDenied(f"You may not change '{child.name}'.")
    if not Connection.objects.restrict(user).filter(pk=parent.pk).exists():
        raise ValidationError({"parent": "Choose a connection you can see."})
    if child.pk == parent.pk:
        raise ValidationError({"parent": "A connection cannot depend on itself."})
    with transaction.atomic():
        if db.vendor == "postgresql":
            with db.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        if child.pk in _ancestors(parent.pk) | {parent.pk}:
            raise ValidationError(
                {
                    "parent": f"'{parent.name}' already depends on '{child.name}': making "
                    f"'{child.name}' depend on it would make a cycle."
                }
            )
        link, _ = Dependency.objects.get_or_create(
            child=child, parent=parent, defaults={"created_by": user}
        )
    return link


def remove_parent(user: Any, child: Connection, parent: Connection) -> None:
    if not Connection.objects.restrict(user, "change").filter(pk=child.pk).exists():
        raise PermissionDenied(f"You may not change '{child.name}'.")
    Dependency.objects.filter(child=child, parent=parent).delete()
