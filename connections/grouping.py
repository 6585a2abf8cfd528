"""Acting on an environment's connections as a group, and changing which connections it
holds: one place for the pages, the table and the API."""

from __future__ import annotations

from typing import Any

from connections import lifecycle
from connections.choices import Status
from connections.models import Connection
from core import access
from core.access import CHANGE, TRANSITION
from environments.models import Environment


def group_transition(
    environment: Environment, user: Any, target: str, reason: str = ""
) -> lifecycle.BulkReport:
    """The transition on every connection of the environment it fits; the rest by name."""
    connections = list(Connection.objects.restrict(user).filter(environments=environment))
    may_change = access.ids(user, Connection.all_objects, [c.pk for c in connections], TRANSITION)
    report = lifecycle.perform_bulk_action(
        [c for c in connections if c.pk in may_change],
        target,
        user=user,
        reason=reason or f"environment '{environment.name}'",
    )
    report.refused += [
        (c.name, "you may not change it") for c in connections if c.pk not in may_change
    ]
    return report


def change_membership(
    environment: Environment, user: Any, connections: list[Connection], *, assign: bool
) -> lifecycle.BulkReport:
    """Assign connections to the environment (or remove them); refusals by name."""
    report = lifecycle.BulkReport(
        f"{'Assigned to' if assign else 'Removed from'} '{environment.name}'"
    )
    may_change = access.ids(user, Connection.all_objects, [c.pk for c in connections], CHANGE)
    chosen = []
    for connection in connections:
        if connection.pk not in may_change:
            report.refused.append((connection.name, "you may not change it"))
        elif connection.status == Status.DELETED:
            report.refused.append((connection.name, "it is deleted"))
        else:
            report.changed.append(connection.name)
            chosen.append(connection)
    if assign:
        environment.connections.add(*chosen)
    else:
        environment.connections.remove(*chosen)
    return report
