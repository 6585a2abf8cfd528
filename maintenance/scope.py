"""Which connections a set of windows covers: as one SQL condition (for the fleet) or as
(connection → windows) pairs (for a few connections), in a fixed number of queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Q

from connections.mentions import Said, joined, naming
from connections.models import Connection
from core import access
from environments.models import Environment

from . import schedule
from .models import Window

_ENV_MEMBERS = Environment.connections.through
_WINDOW_CONNECTIONS = Window.connections.through
_WINDOW_ENVIRONMENTS = Window.environments.through
_EPSILON = timedelta(microseconds=1)


def fleet_kinds_allowed(window: Window) -> bool:
    """A kind scope without an environment spans the whole fleet: a staff owner's only."""
    return window.environment_id is not None or access.sees_all(window.owner, Connection)


def covered_q(windows: list[Window]) -> Q | None:
    """A condition on Connection: covered by any of ``windows`` (None: by nothing). Its size
    grows only with the windows scoped by kind inside an environment."""
    if not windows:
        return None
    ids = [w.pk for w in windows]
    direct = _WINDOW_CONNECTIONS.objects.filter(window_id__in=ids).values("connection_id")
    scoped_envs = _WINDOW_ENVIRONMENTS.objects.filter(window_id__in=ids).values("environment_id")
    members = _ENV_MEMBERS.objects.filter(environment_id__in=scoped_envs).values("connection_id")
    q = Q(pk__in=direct) | Q(pk__in=members)
    fleet_kinds: set[str] = set()
    env_kinds: dict[int, set[str]] = defaultdict(set)
    for w in windows:
        if not w.kinds or not fleet_kinds_allowed(w):
            continue
        if w.environment_id is None:
            fleet_kinds.update(w.kinds)
        else:
            env_kinds[w.environment_id].update(w.kinds)
    if fleet_kinds:
        q |= Q(kind__in=sorted(fleet_kinds))
    for environment_id, kinds in env_kinds.items():
        inside = _ENV_MEMBERS.objects.filter(environment_id=environment_id).values("connection_id")
        q |= Q(kind__in=sorted(kinds), pk__in=inside)
    return q


def covering(windows: list[Window], kinds: dict[int, str]) -> dict[int, list[Window]]:
    """connection id → the windows of ``windows`` that cover it, for the connections of
    ``kinds`` (id → kind); three queries whatever the numbers."""
    result: dict[int, list[Window]] = defaultdict(list)
    if not windows or not kinds:
        return result
    by_id = {w.pk: w for w in windows}
    ids = list(kinds)
    for window_id, connection_id in _WINDOW_CONNECTIONS.objects.filter(
        window_id__in=list(by_id), connection_id__in=ids
    ).values_list("window_id", "connection_id"):
        result[connection_id].append(by_id[window_id])
    env_windows: dict[int, set[int]] = defaultdict(set)
    for window_id, environment_id in _WINDOW_ENVIRONMENTS.objects.filter(
        window_id__in=list(by_id)
    ).values_list("window_id", "environment_id"):
        env_windows[environment_id].add(window_id)
    own_env = {w.environment_id for w in windows if w.kinds and w.environment_id}
    members: dict[int, set[int]] = defaultdict(set)
    if env_windows or own_env:
        for environment_id, connection_id in _ENV_MEMBERS.objects.filter(
            environment_id__in=set(env_windows) | own_env, connection_id__in=ids
        ).values_list("environment_id", "connection_id"):
            members[connection_id].add(environment_id)
    for connection_id, kind in kinds.items():
        found = {w.pk for w in result[connection_id]}
        for environment_id in members[connection_id]:
            found |= env_windows.get(environment_id, set())
        for w in windows:
            inside = w.environment_id is None or w.environment_id in members[connection_id]
            if kind in (w.kinds or ()) and fleet_kinds_allowed(w) and inside:
                found.add(w.pk)
        result[connection_id] = [by_id[pk] for pk in sorted(found)]
    return _within_owners_rights(result)


def _within_owners_rights(result: dict[int, list[Window]]) -> dict[int, list[Window]]:
    """Keep a window over a connection only while the window's owner may still hold it: a
    window of no environment, while the user who made it may still change the connection
    (rights lost after it was saved end its hold); an environment's window, which is the
    environment's whoever made it (``Window.restrict``), while the connection is still in that
    environment. One query per distinct user owning such windows, and one for the
    environments."""
    ids = [cid for cid, found in result.items() if found]
    windows = [w for found in result.values() for w in found]
    owners = {w.owner_id: w.owner for w in windows if w.environment_id is None}
    allowed = {
        owner_id: set(
            Connection.all_objects.restrict(owner, "change")
            .filter(pk__in=ids)
            .values_list("pk", flat=True)
        )
        for owner_id, owner in owners.items()
    }
    inside: set[tuple[int, int]] = set()
    environments = {w.environment_id for w in windows if w.environment_id is not None}
    if environments:
        inside = set(
            _ENV_MEMBERS.objects.filter(
                environment_id__in=environments, connection_id__in=ids
            ).values_list("environment_id", "connection_id")
        )

    def holds(window: Window, cid: int) -> bool:
        if window.environment_id is None:
            return cid in allowed[window.owner_id]
        return (window.environment_id, cid) in inside

    return defaultdict(
        list, {cid: [w for w in found if holds(w, cid)] for cid, found in result.items()}
    )


def enabled_windows() -> list[Window]:
    return list(Window.objects.filter(enabled=True).select_related("owner"))


def windows_between(
    kinds: dict[int, str], since: datetime, until: datetime
) -> dict[int, list[tuple[Window, datetime, datetime]]]:
    """connection id → (window, start, end) of the occurrences overlapping [since, until]
    that cover it: what notifications need to tell whether an event fell inside a window.
    One query when no window is active then, four otherwise."""
    occurrences: dict[int, list[tuple[datetime, datetime]]] = {}
    windows = []
    for w in enabled_windows():
        found = list(schedule.occurrences(w, since, until + _EPSILON))
        if found:
            occurrences[w.pk] = found
            windows.append(w)
    result: dict[int, list[tuple[str, datetime, datetime]]] = {}
    for connection_id, covering_windows in covering(windows, kinds).items():
        result[connection_id] = [
            (w, start, end) for w in covering_windows for start, end in occurrences[w.pk]
        ]
    return result


def window_phrase(window: Window) -> Said:
    """ "maintenance window <name>", to readers who may see the window (connections.mentions)."""
    return naming("window", window.pk, f"maintenance window {window.name}", "a maintenance window")


def phrases(windows: Iterable[Window], limit: int = 3) -> Said:
    """Each window's phrase, by name; past ``limit``, how many more."""
    ordered = sorted({w.pk: w for w in windows}.values(), key=lambda w: (w.name, w.pk))
    said = joined(window_phrase(w) for w in ordered[:limit])
    return said + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")
