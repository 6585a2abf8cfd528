"""Who reads a text about a connection, and so which other objects it may name.

A connection's reason, its notifications' quiet notes and its history are read by everyone who
may see the connection: staff, its owner, and the owners and members of its environments. A
text about it names another object (a parent connection, a maintenance window) only when every
one of those readers may see that object too; otherwise it says what happened without the name
("a connection it depends on", "a maintenance window"). Staff see everything and are left out
of the sets. A batch asks once: a few queries whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .models import Environment, EnvironmentMembership


def environment_readers(ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """environment id → the users (not staff) who may see it: its owner and members."""
    ids = set(ids)
    found: dict[int, set[int]] = defaultdict(set)
    if not ids:
        return {}
    for pk, owner_id in Environment.objects.filter(pk__in=ids).values_list("pk", "owner_id"):
        found[pk].add(owner_id)
    for environment_id, user_id in EnvironmentMembership.objects.filter(
        environment_id__in=ids
    ).values_list("environment_id", "user_id"):
        found[environment_id].add(user_id)
    return {pk: frozenset(users) for pk, users in found.items()}


class Audience:
    """The readers of connections (and windows) for one batch of texts, looked up lazily."""

    def __init__(self) -> None:
        self._connections: dict[int, frozenset[int]] = {}
        self._environments: dict[int, frozenset[int]] = {}

    def connections(self, ids: Iterable[int]) -> None:
        """Look up the readers of these connections (and their environments) now, together."""
        from connections.models import Connection

        missing = set(ids) - set(self._connections)
        if not missing:
            return
        owners = dict(Connection.all_objects.filter(pk__in=missing).values_list("pk", "owner_id"))
        links = list(
            Environment.connections.through.objects.filter(connection_id__in=missing).values_list(
                "connection_id", "environment_id"
            )
        )
        self.environments(e for _, e in links)
        found: dict[int, set[int]] = {pk: {owner} - {None} for pk, owner in owners.items()}
        for connection_id, environment_id in links:
            found.setdefault(connection_id, set()).update(self._environments[environment_id])
        for pk in missing:
            self._connections[pk] = frozenset(found.get(pk, ()))

    def environments(self, ids: Iterable[int]) -> None:
        missing = set(ids) - set(self._environments)
        if missing:
            found = environment_readers(missing)
            self._environments.update({pk: found.get(pk, frozenset()) for pk in missing})

    def of_connection(self, pk: int) -> frozenset[int]:
        self.connections([pk])
        return self._connections[pk]

    def of_window(self, window: Any) -> frozenset[int]:
        """A window of an environment is read by that environment's readers; a window of no
        environment by its owner alone."""
        if window.environment_id is None:
            return frozenset({window.owner_id})
        self.environments([window.environment_id])
        return self._environments[window.environment_id]

    def may_name_connection(self, named: int, subject: int) -> bool:
        """May a text about connection ``subject`` name connection ``named``?"""
        self.connections([named, subject])
        return self._connections[subject] <= self._connections[named]

    def may_name_window(self, window: Any, subject: int) -> bool:
        """May a text about connection ``subject`` name ``window``?"""
        return self.of_connection(subject) <= self.of_window(window)
