"""What the overview shows, read for one user in a fixed number of queries (see the package
docstring for how each figure is defined).

(Over 400 lines, on purpose: the figures share one read of the user's connections and one
window of time; each query here is shaped by the ones beside it.)"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.db import connection as db
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Greatest, Least
from django.urls import reverse
from django.utils import timezone

from connections.choices import PROBED_STATES, STATE_ICONS, Status
from connections.mentions import Seen
from connections.models import Connection, ConnectionTransition, entered
from connections.probing.reasons import of_summary
from core import access
from core.db import Epoch
from environments.models import Environment

UPTIME_WINDOW = timedelta(hours=24)
ATTENTION_LIMIT = 50
PARTIAL_LIMIT = 20  # connections in a partial outage listed (probed from several locations)
TRANSITIONS_LIMIT = 20
ENVIRONMENT_TILES_LIMIT = 60

UP_STATES = (Status.REGISTERED, Status.CONNECTED)
DOWN_STATES = (Status.DISCONNECTED, Status.NOT_FOUND)
# The order of a tile's counts: what needs a look first.
TILE_STATES = (
    Status.DISCONNECTED,
    Status.NOT_FOUND,
    Status.MAINTENANCE,
    Status.CONNECTED,
    Status.REGISTERED,
    Status.DISCOVERED,
    Status.IGNORED,
)
# Failing authentication: the last probe of a probed connection failed with error class "auth"
# (stored as such: ``last_probe_class``).
AUTH_FAILING = Q(status__in=PROBED_STATES, last_probe_ok=False, last_probe_class="auth")
NEEDS_ATTENTION = Q(status__in=DOWN_STATES) | AUTH_FAILING
# ... and not counted already as Disconnected
AUTH_FAILING_REACHABLE = AUTH_FAILING & ~Q(status__in=DOWN_STATES)


def table_url(**params: Any) -> str:
    return f"{reverse('connections:list')}?{urlencode(params, doseq=True)}"


def uptime_text(up: float, down: float) -> str | None:
    """A percentage that never rounds lost time up to 100 %; None: no counted time."""
    if up + down <= 0:
        return None
    if down <= 0:
        return "100%"
    share = math.floor(10000 * up / (up + down)) / 100
    return f"{min(share, 99.99):.2f}%"


@dataclass
class StateCount:
    status: str
    count: int
    url: str | None

    @property
    def label(self) -> str:
        return Status(self.status).label

    @property
    def icon(self) -> str:
        return STATE_ICONS[self.status]


@dataclass
class Tile:
    key: str
    title: str
    environment_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    auth_failing: int = 0  # in a probed state (Disconnected ones are counted there already)
    up_seconds: float = 0.0
    down_seconds: float = 0.0
    linked: bool = True

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def attention(self) -> int:
        return sum(self.counts.get(s, 0) for s in DOWN_STATES) + self.auth_failing

    @property
    def uptime(self) -> str | None:
        return uptime_text(self.up_seconds, self.down_seconds)

    @property
    def url(self) -> str:
        if self.environment_id is None:
            return reverse("connections:list")
        return reverse("environments:detail", args=[self.environment_id])

    def filter_url(self, *statuses: str) -> str | None:
        if not self.linked:
            return None
        params: dict[str, Any] = {"status": list(statuses)}
        if self.environment_id is not None:
            params = {"environment": self.environment_id, **params}
        return table_url(**params)

    @cached_property  # read when the page is drawn, after the counts are complete
    def states(self) -> list[StateCount]:
        return [
            StateCount(status, self.counts[status], self.filter_url(status))
            for status in TILE_STATES
            if self.counts.get(status)
        ]


@dataclass
class AttentionRow:
    connection: Connection
    problem: str  # "auth", "disconnected" or "not_found"
    reason: str
    last_error: str
    environments: list[tuple[int, str]]

    @property
    def problem_label(self) -> str:
        return "Authentication failing" if self.problem == "auth" else Status(self.problem).label

    @property
    def icon(self) -> str:
        return "key-round" if self.problem == "auth" else STATE_ICONS[self.problem]


@dataclass
class Overview:
    now: datetime
    window: timedelta
    total: Tile
    environments: list[Tile]
    more_environments: int
    unassigned: Tile | None
    attention: list[AttentionRow]
    transitions: list[ConnectionTransition]
    # down in some locations but not a quorum (connections/probing/rounds.py): not a state
    partial: list[Connection] = field(default_factory=list)
    more_partial: bool = False

    @property
    def empty(self) -> bool:
        return self.total.total == 0 and not self.environments

    @property
    def window_hours(self) -> int:
        return int(self.window.total_seconds() // 3600)

    @property
    def more_attention(self) -> int:
        return max(self.total.attention - len(self.attention), 0)

    @property
    def maintenance(self) -> int:
        return self.total.counts.get(Status.MAINTENANCE, 0)

    @property
    def maintenance_url(self) -> str:
        return table_url(status=[Status.MAINTENANCE])

    @property
    def attention_url(self) -> str:
        return table_url(status=list(DOWN_STATES))


def build(user: Any, now: datetime | None = None, window: timedelta = UPTIME_WINDOW) -> Overview:
    """The overview for ``user``, in ten queries whatever the fleet's size (fewer when nothing
    changed within the window or nothing needs attention)."""
    with transaction.atomic():
        if db.vendor == "postgresql":
            # The grouped passes are estimated far above jit_above_cost, and compiling them
            # took 0.6-1.4 s at 100,000 connections for queries that run in well under 0.1 s.
            with db.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        return _build(user, now or timezone.now(), window)


def _build(user: Any, now: datetime, window: timedelta) -> Overview:
    start = now - window
    environments = Environment.objects.restrict(user).order_by("name", "pk")
    names = dict(environments.values_list("pk", "name"))
    tiles = {pk: Tile(f"env-{pk}", name, environment_id=pk) for pk, name in names.items()}
    total = Tile("total", "All connections")
    unassigned = Tile("none", "Without an environment", linked=False)
    visible = Connection.objects.restrict(user)
    for scope, status, count, auth, steady in _state_counts(visible, environments, now, start):
        tile = total if scope == "total" else unassigned if scope is None else tiles.get(scope)
        if tile is None:
            continue
        tile.counts[status] = count
        tile.auth_failing += auth
        _add_time(tile, status, steady)
    for env_ids, seconds in _changed_within(visible, environments, now, start):
        for tile in [total, *(tiles[pk] for pk in env_ids if pk in tiles)]:
            _add_seconds(tile, seconds)
        if not env_ids:
            _add_seconds(unassigned, seconds)
    environment_tiles = list(tiles.values())
    return Overview(
        now=now,
        window=window,
        total=total,
        environments=environment_tiles[:ENVIRONMENT_TILES_LIMIT],
        more_environments=max(len(environment_tiles) - ENVIRONMENT_TILES_LIMIT, 0),
        unassigned=unassigned if unassigned.total else None,
        attention=_attention(visible, names, user),
        transitions=_transitions(user),
        **_partial(visible),
    )


def _add_time(tile: Tile, status: str, seconds: float) -> None:
    if status in UP_STATES:
        tile.up_seconds += seconds
    elif status in DOWN_STATES:
        tile.down_seconds += seconds


def _add_seconds(tile: Tile, seconds: dict[str, float]) -> None:
    for status, value in seconds.items():
        _add_time(tile, status, value)


def _steady_seconds(now: datetime, start: datetime):
    """The window's seconds a connection whose state did not change within it spent in that
    state (since its creation, if later); 0 for the others, which the log accounts for."""
    # never after now: a row written by a worker whose clock runs ahead spends no negative time
    since = Least(
        Greatest(Value(start, output_field=DateTimeField()), F("created_at")),
        Value(now, output_field=DateTimeField()),
    )
    spent = ExpressionWrapper(
        Value(now, output_field=DateTimeField()) - since, output_field=DurationField()
    )
    return Sum(
        Case(
            When(status_changed_at__gt=start, then=Value(timedelta(0))),
            default=spent,
            output_field=DurationField(),
        )
    )


def _state_counts(visible, environments, now: datetime, start: datetime):
    """(environment id, or the total Tile, or None), status, count, failing auth, steady
    seconds: two grouped passes over the visible connections, one per environment membership
    and one for all (which also tells those in no visible environment)."""
    through = Environment.connections.through
    in_visible_environment = through.objects.filter(environment__in=environments.values("pk"))
    auth = Count("pk", filter=AUTH_FAILING_REACHABLE)
    steady = _steady_seconds(now, start)
    per_environment = (
        visible.filter(environments__in=environments.values("pk"))
        .order_by()
        .values("environments", "status")
        .annotate(n=Count("pk"), auth=auth, steady=steady)
    )
    rows = [
        (r["environments"], r["status"], r["n"], r["auth"], _seconds(r["steady"]))
        for r in per_environment
    ]
    everything = (
        visible.annotate(
            in_environment=Exists(in_visible_environment.filter(connection_id=OuterRef("pk")))
        )
        .order_by()
        .values("in_environment", "status")
        .annotate(n=Count("pk"), auth=auth, steady=steady)
    )
    totals: dict[str, list] = {}
    for r in everything:
        seconds = _seconds(r["steady"])
        row = totals.setdefault(r["status"], [0, 0, 0.0])
        row[0] += r["n"]
        row[1] += r["auth"]
        row[2] += seconds
        if not r["in_environment"]:
            rows.append((None, r["status"], r["n"], r["auth"], seconds))
    return [*rows, *(("total", status, *values) for status, values in totals.items())]


def _seconds(value: timedelta | int | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value / 1_000_000  # a backend that sums durations as microseconds


def _changed_within(visible, environments, now: datetime, start: datetime):
    """For each visible connection whose state changed within the window: its visible
    environments and the seconds it spent per state, from the audit log. Three queries, each
    as large as the window's changes, not the fleet; times are read as seconds since the epoch
    (after a fleet-wide change, parsing thousands of timestamps cost more than the rest)."""
    changed = visible.filter(status_changed_at__gt=start)
    connections = dict(
        (pk, (status, created))
        for pk, status, created in changed.annotate(created=Epoch("created_at")).values_list(
            "pk", "status", "created"
        )
    )
    if not connections:
        return []
    flips: dict[int, list[tuple[str, str, float]]] = defaultdict(list)
    for connection_id, from_status, to_status, at in (
        ConnectionTransition.objects.filter(
            connection__in=changed.values("pk"), created_at__gt=start, created_at__lte=now
        )
        .order_by("connection_id", "created_at", "pk")
        .annotate(at=Epoch("created_at"))
        .values_list("connection_id", "from_status", "to_status", "at")
    ):
        flips[connection_id].append((from_status, to_status, at))
    memberships: dict[int, list[int]] = defaultdict(list)
    for connection_id, env_id in Environment.connections.through.objects.filter(
        connection__in=changed.values("pk"), environment__in=environments.values("pk")
    ).values_list("connection_id", "environment_id"):
        memberships[connection_id].append(env_id)
    now_s, start_s = now.timestamp(), start.timestamp()
    result = []
    for pk, (status, created) in connections.items():
        seconds: dict[str, float] = defaultdict(float)
        moments = flips.get(pk)
        if not moments:  # changed, but the log says nothing: its current state all along
            # (never negative: a row written by a worker whose clock runs ahead)
            seconds[status] += max(now_s - max(start_s, created), 0)
        else:
            first_from, _, first_at = moments[0]
            if first_from:
                seconds[first_from] += max(first_at - max(start_s, created), 0)
            ends = [at for _, _, at in moments[1:]] + [now_s]
            for (_, to_status, at), end in zip(moments, ends, strict=True):
                seconds[to_status] += max(end - at, 0)
        result.append((memberships.get(pk, []), seconds))
    return result


def _partial(visible) -> dict[str, Any]:
    """The visible connections in a partial outage, by name: one query on a partial index (no
    query's row is read when there is none)."""
    rows = list(
        visible.filter(locations_note__startswith="down in", status__in=PROBED_STATES)
        .only("name", "kind", "status", "locations_note")
        .order_by("name", "id")[: PARTIAL_LIMIT + 1]
    )
    return {"partial": rows[:PARTIAL_LIMIT], "more_partial": len(rows) > PARTIAL_LIMIT}


def _attention(visible, environment_names: dict[int, str], user: Any) -> list[AttentionRow]:
    """The worst first, the longest-standing first within: two queries, one when empty."""
    problem = Case(
        When(AUTH_FAILING, then=Value(0)),
        When(status=Status.DISCONNECTED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    # the reason recorded with the transition into the current state (the newest one there)
    rows = list(
        visible.filter(NEEDS_ATTENTION)
        .annotate(problem_rank=problem, entered_row=entered("reason", "mentions"))
        .only(
            "name",
            "kind",
            "status",
            "status_changed_at",
            "last_probe_at",
            "last_probe_ok",
            "last_probe_error",
            "last_probe_class",
            "url",
            "consecutive_failures",
        )
        .order_by("problem_rank", "status_changed_at", "pk")[:ATTENTION_LIMIT]
    )
    if not rows:
        return []
    memberships = defaultdict(list)
    for connection_id, env_id in Environment.connections.through.objects.filter(
        connection_id__in=[c.pk for c in rows]
    ).values_list("connection_id", "environment_id"):
        if env_id in environment_names:
            memberships[connection_id].append((env_id, environment_names[env_id]))
    result = []
    seen = Seen(user).load((c.entered_row or {}).get("mentions") for c in rows)
    for c in rows:
        entered_row = c.entered_row or {}
        reason = seen.text(entered_row.get("reason", ""), entered_row.get("mentions"))
        failing = c.last_probe_ok is False and c.last_probe_error
        said = of_summary(c.last_probe_class, c.last_probe_error, c.url).sentence if failing else ""
        last_error = said if said and said not in reason else ""
        kind = "auth" if c.problem_rank == 0 else c.status
        envs = sorted(memberships[c.pk], key=lambda e: e[1])
        result.append(AttentionRow(c, kind, reason, last_error, envs))
    return result


# The newest transitions are read from the log's time index in pages, each page checked
# against what the user may see: asking PostgreSQL for "the newest 20 of visible connections"
# at once made it hash every transition and every visible connection (200 ms at 100,000
# connections), whatever the index. A page is enough for whoever sees much of the fleet; for a
# user who sees little, after TRANSITION_PAGES pages, the one query finds the rest.
TRANSITION_PAGE = 200
TRANSITION_PAGES = 3


def _transitions(user: Any) -> list[ConnectionTransition]:
    """The newest transitions of connections ``user`` may see, their reasons as the user may
    read them."""
    rows = _newest_transitions(user)
    seen = Seen(user).load(t.mentions for t in rows)
    for t in rows:
        t.reason = seen.text(t.reason, t.mentions)  # shown, never saved
    return rows


def _newest_transitions(user: Any) -> list[ConnectionTransition]:
    newest = (
        ConnectionTransition.objects.select_related("connection", "user")
        .only(
            "from_status",
            "to_status",
            "trigger",
            "reason",
            "mentions",
            "created_at",
            "connection__name",
            "connection__kind",
            "connection__status",
            "user__username",
        )
        .order_by("-created_at", "-pk")
    )
    if access.sees_all(user, Connection):  # every connection: the first 20 rows are the answer
        return list(newest[:TRANSITIONS_LIMIT])
    visible = Connection.all_objects.restrict(user)
    picked: list[ConnectionTransition] = []
    after = None
    for _ in range(TRANSITION_PAGES):
        page = newest
        if after is not None:
            page = newest.filter(
                Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk)
            )
        rows = list(page[:TRANSITION_PAGE])
        ids = {row.connection_id for row in rows}
        seen = set(visible.filter(pk__in=ids).values_list("pk", flat=True)) if ids else ()
        picked += [row for row in rows if row.connection_id in seen]
        if len(picked) >= TRANSITIONS_LIMIT or len(rows) < TRANSITION_PAGE:
            return picked[:TRANSITIONS_LIMIT]
        after = rows[-1]
    return list(newest.filter(connection__in=visible.values("pk"))[:TRANSITIONS_LIMIT])
