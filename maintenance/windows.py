"""The one rule for making and changing maintenance windows, called by the pages and the API:
who may, what a window may cover, and what "End now", enable/disable and delete do.

Visibility is ``Window.objects.restrict(user)`` (own windows, and those of the environments the
user may see); managing is ``restrict(user, "change")`` (own windows, and those of the
environments the user owns or edits; staff: all).

What a window may cover, so that managing a window never reaches further than the right to put
a connection in maintenance by hand (README: owners and editors):

- an environment's window covers only that environment: its connections, itself as an
  environment scope, and kinds (inside it);
- a window of one's own covers the connections the user may change and the environments they own
  or edit; kinds without an environment span the fleet, so only staff may give them.

Every change is checked against the user making it, on the whole scope (an editor changing only
the times of a window still needs the right to every connection it covers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from connections.kinds import kind_choices
from connections.models import Connection
from core import access
from environments.models import Environment

from . import schedule
from .models import Window, validate_timezone

MAX_SCOPE = 500  # ids in one scope list
NEXT_SHOWN = 3
SCHEDULE_FIELDS = (
    "kind",
    "starts_at",
    "ends_at",
    "weekdays",
    "start_time",
    "duration_minutes",
    "timezone",
)
EDITABLE = (*SCHEDULE_FIELDS, "name", "kinds", "enabled")
VIEWER_TZ_SESSION_KEY = "maintenance_tz"
WEEKDAY_NAMES = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


# --- who may ----------------------------------------------------------------------------------


def can_manage(user: Any, window: Window) -> bool:
    return access.may(user, window, access.CHANGE)


def manageable_environments(user: Any):
    return Environment.objects.restrict(user, "change")


def scope_connections(user: Any, environment: Environment | None = None):
    """The connections a window (of ``environment``, or of the user's own) may name."""
    connections = Connection.objects.restrict(user, "change")
    if environment is not None:
        connections = connections.filter(environments=environment.pk)
    return connections.order_by("name", "pk")


def scope_environments(user: Any, environment: Environment | None = None):
    environments = manageable_environments(user)
    if environment is not None:
        environments = environments.filter(pk=environment.pk)
    return environments.order_by("name", "pk")


def _require(user: Any, window: Window) -> None:
    if window.pk is not None and not can_manage(user, window):
        raise PermissionDenied(f"You may view the window '{window.name}' but not change it.")


# --- saving -----------------------------------------------------------------------------------


def _check_scope(
    user: Any,
    environment: Environment | None,
    connections: list[Connection],
    environments: list[Environment],
    kinds: list[str],
) -> None:
    errors: dict[str, str] = {}
    if len(connections) > MAX_SCOPE or len(environments) > MAX_SCOPE:
        errors["connections"] = f"Give at most {MAX_SCOPE} connections and environments."
    ids = {c.pk for c in connections}
    if ids and scope_connections(user, environment).filter(pk__in=ids).count() != len(ids):
        errors["connections"] = (
            "Choose connections of this window's environment that you may change."
            if environment is not None
            else "Choose connections you may change."
        )
    ids = {e.pk for e in environments}
    if ids and scope_environments(user, environment).filter(pk__in=ids).count() != len(ids):
        errors["environments"] = (
            "A window of an environment may cover only that environment."
            if environment is not None
            else "Choose environments you own or edit."
        )
    if not isinstance(kinds, list):
        errors["kinds"] = "Kinds are a list."
    else:
        known = {value for value, _ in kind_choices()}
        if any(not isinstance(k, str) or k not in known for k in kinds):
            errors["kinds"] = f"Kinds are a list of: {', '.join(sorted(known))}."
        elif kinds and environment is None and not access.sees_all(user, Connection):
            errors["kinds"] = (
                "Kinds without an environment span the whole fleet: give the window an "
                "environment, or name connections instead."
            )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def save_window(
    user: Any,
    window: Window,
    *,
    connections: list[Connection] | None = None,
    environments: list[Environment] | None = None,
    environment: Environment | None | object = ...,
    **fields: Any,
) -> Window:
    """Create (``window.pk is None``) or change a window. ``connections``/``environments``
    None keep the current scope; ``environment`` is set on creation only. Raises
    PermissionDenied, or ValidationError naming the fields."""
    creating = window.pk is None
    _require(user, window)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in sorted(unknown)})
    if creating:
        window.owner = user
        window.environment = None if environment is ... else environment
        if window.environment is not None and (
            not manageable_environments(user).filter(pk=window.environment.pk).exists()
        ):
            raise ValidationError(
                {"environment": "Only an environment's owner and editors may give it windows."}
            )
    elif environment is not ... and environment != window.environment:
        raise ValidationError({"environment": "A window's environment cannot be changed."})
    before = {name: getattr(window, name) for name in SCHEDULE_FIELDS}
    for name, value in fields.items():
        setattr(window, name, value)
    # only the fields of its kind are kept
    if window.kind == Window.Kind.ONE_OFF:
        window.weekdays, window.start_time, window.duration_minutes = [], None, None
    elif window.kind == Window.Kind.RECURRING:
        window.starts_at = window.ends_at = None
        if isinstance(window.weekdays, list):
            days = window.weekdays
            if all(isinstance(d, int) and not isinstance(d, bool) for d in days):
                window.weekdays = sorted(set(days))
    if isinstance(window.kinds, list):
        window.kinds = list(dict.fromkeys(window.kinds))
    if not creating and any(getattr(window, n) != v for n, v in before.items()):
        window.ended_at = None  # a new schedule: an earlier "End now" no longer applies
    if creating:
        connections, environments = list(connections or []), list(environments or [])
    else:
        connections = list(connections) if connections is not None else None
        environments = list(environments) if environments is not None else None
    _check_scope(
        user,
        window.environment,
        connections if connections is not None else list(window.connections.all()),
        environments if environments is not None else list(window.environments.all()),
        window.kinds,
    )
    window.full_clean(exclude=["owner", "connections", "environments"])
    window.save()
    if connections is not None:
        window.connections.set(connections)
    if environments is not None:
        window.environments.set(environments)
    return window


def end_now(user: Any, window: Window, now: datetime | None = None) -> Window:
    """Cut the current occurrence short now; the next ``apply_windows`` run takes its
    connections out (and probes them). Later occurrences of a recurring window still happen."""
    _require(user, window)
    now = now or timezone.now()
    if schedule.active_occurrence(window, now) is None:
        raise ValidationError({"ended_at": "The window is not active now: nothing to end."})
    window.ended_at = now
    window.save(update_fields=["ended_at"])
    return window


def set_enabled(user: Any, window: Window, enabled: bool) -> Window:
    """A disabled window covers nothing (its connections leave at the next run)."""
    _require(user, window)
    window.enabled = bool(enabled)
    window.save(update_fields=["enabled"])
    return window


def delete_window(user: Any, window: Window) -> None:
    _require(user, window)
    window.delete()


# --- showing ----------------------------------------------------------------------------------


def viewer_timezone(request: Any) -> ZoneInfo:
    """The viewer's timezone: the project keeps none per user (``TIME_ZONE`` is UTC), so it is
    the one they picked on the maintenance page (kept in the session), else ``TIME_ZONE``."""
    session = getattr(request, "session", None)
    name = session.get(VIEWER_TZ_SESSION_KEY) if session is not None else None
    try:
        if isinstance(name, str) and name:
            validate_timezone(name)
            return ZoneInfo(name)
    except ValidationError:
        pass
    return ZoneInfo(settings.TIME_ZONE)


def remember_timezone(request: Any, name: str) -> bool:
    """Keep a display preference in the session; False if it is no IANA name."""
    try:
        validate_timezone(name)
    except ValidationError:
        return False
    request.session[VIEWER_TZ_SESSION_KEY] = name
    return True


def state(window: Window, now: datetime) -> str:
    """active, upcoming or past (a disabled window is past: nothing of it will happen)."""
    if schedule.active_occurrence(window, now) is not None:
        return "active"
    if schedule.next_occurrences(window, now, 1):
        return "upcoming"
    return "past"


def annotate(window: Window, now: datetime, tz: ZoneInfo, n: int = NEXT_SHOWN) -> Window:
    """Sets ``state``, ``upcoming`` (next ``n`` occurrences: start, end in the viewer's zone
    and the window's own) for the templates."""
    own = window.zone
    window.state = state(window, now)
    names = dict(WEEKDAY_NAMES)
    window.weekday_names = [names.get(d, str(d)) for d in (window.weekdays or [])]
    window.upcoming = [
        {
            "start": start.astimezone(tz),
            "end": end.astimezone(tz),
            "start_own": start.astimezone(own),
            "end_own": end.astimezone(own),
            "active": start <= now < end,
        }
        for start, end in schedule.next_occurrences(window, now, n)
    ]
    return window
