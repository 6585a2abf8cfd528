"""The one way a connection changes state (connections are created by ``connections.creating``).

``transition`` picks the ``@transition`` method of ``Connection`` for (current state, target,
trigger), checks the user's permission, and in one transaction compare-and-sets the row on the
state *and* version it was loaded with and writes the history row. A concurrent change makes the
update match no row: the caller gets ``StaleState`` and nothing is applied. A user action therefore
wins over a probe that started before it: the probe's result is applied against the version it
read, which the user's action has bumped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import ConcurrentTransition, Transition

from connections.probing.probes import ProbeOutcome, check_reachability, probe_many

from . import hooks
from .choices import PROBED_STATES, Status, Trigger
from .mentions import Said
from .models import (
    Connection,
    ConnectionTransition,
    DiscoveredResource,
    MetricSample,
    ProbeResult,
    ProbeRollup,
    resume_target,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

LABELS = dict(Status.choices)


class TransitionRefused(Exception):
    """The edge is not in the lifecycle table (or its rule is not met); nothing changed."""

    api_status, api_code = 409, "transition_refused"

    def __init__(self, message: str, *, current: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.current = current
        self.allowed = allowed

    def api_extra(self) -> dict[str, Any]:
        return {"current": self.current, "allowed": list(self.allowed)}


class StaleState(TransitionRefused):
    """Another actor changed the connection first (the compare-and-set lost); nothing changed."""

    api_code = "stale_state"


class RegistrationFailed(Exception):
    """The reachability check of a Register / Retry failed and the table has no edge for it."""

    api_status, api_code = 409, "registration_failed"

    def __init__(self, message: str, outcome: ProbeOutcome, url: str = "") -> None:
        super().__init__(message)
        self.outcome = outcome
        self.url = url

    def api_extra(self) -> dict[str, Any]:
        return {
            "reason": self.outcome.said(self.url),
            "error_class": self.outcome.error_class,
            "detail": self.outcome.error,
        }


def _transitions_of(connection: Connection) -> list[Transition]:
    field = Connection._meta.get_field("status")
    return list(field.get_all_transitions(type(connection)))


def resolve_target(transition: Transition, connection: Connection) -> str:
    target = transition.target
    return target.func(connection) if hasattr(target, "func") else target


def edges() -> set[tuple[str, str, str]]:
    """Every (from, to, trigger) the state machine defines, whatever the rules' conditions."""
    result = set()
    for item in _transitions_of(Connection()):
        targets = getattr(item.target, "allowed_states", None) or [item.target]
        for target in targets:
            result.add((str(item.source), str(target), str(item.custom["trigger"])))
    return result


def available(
    connection: Connection, trigger: str = Trigger.USER, user: Any = None
) -> dict[str, Transition]:
    """Target state -> transition, for the edges open from the current state by this trigger."""
    options = {}
    for item in connection.get_available_status_transitions():
        if item.custom.get("trigger") != trigger:
            continue
        if user is not None and not item.has_perm(connection, user):
            continue
        options.setdefault(resolve_target(item, connection), item)
    return options


def user_targets(connection: Connection, user: Any = None) -> list[str]:
    """The states a user may move this connection to (what menus and the admin offer);
    without ``user``, permission is the caller's business (it checked it for many rows)."""
    visible = {
        target: item
        for target, item in available(connection, Trigger.USER, user).items()
        if item.custom.get("admin", True)
    }
    return [status for status in Status.values if status in visible]


def refusal(connection: Connection, target: str, trigger: str) -> TransitionRefused:
    current = connection.status
    allowed = [s for s in Status.values if s in available(connection, trigger)]
    reachable = ", ".join(LABELS[s] for s in allowed) or "no other state"
    by = "" if trigger == Trigger.USER else f" by {trigger}"
    return TransitionRefused(
        f"'{connection.name}' is {LABELS[current]}: it cannot move to "
        f"{LABELS.get(target, target)}{by}. From {LABELS[current]} it can move{by} to: "
        f"{reachable}.",
        current=current,
        allowed=allowed,
    )


def transition(
    connection: Connection,
    target: str,
    *,
    trigger: str,
    user: Any = None,
    reason: str | Said = "",
    extra_fields: tuple[str, ...] = (),
    claim: Any = None,
    cause: str = "",
) -> ConnectionTransition:
    """Move ``connection`` to ``target``, or raise TransitionRefused/StaleState/PermissionDenied.
    A ``Said`` reason keeps which objects it names (``mentions``).

    ``extra_fields`` are saved with the state under the same compare-and-set (a probe's
    bookkeeping goes with the transition it causes, or not at all); with ``claim`` the row
    must also still carry that probe claim. ``cause``: the class of what caused it (a probe's
    error class, such as "auth"), stored for whoever decides by it.
    """
    if trigger == Trigger.USER and user is None:
        raise PermissionDenied("A user action needs the user who takes it.")
    item = available(connection, trigger).get(target)
    if item is None:
        raise refusal(connection, target, trigger)
    if trigger == Trigger.USER and not item.has_perm(connection, user):
        raise PermissionDenied(f"You may not change the state of '{connection.name}'.")

    said = reason if isinstance(reason, Said) else Said(reason)
    from_status, version = connection.status, connection.state_version
    now = timezone.now()
    try:
        with transaction.atomic():
            connection._cas = (from_status, version)
            connection._cas_claim = claim
            before = (connection.consecutive_failures, connection.next_probe_at)
            getattr(connection, item.name)()
            if connection.status in PROBED_STATES and from_status not in PROBED_STATES:
                connection.next_probe_at = now  # probe it soon after it becomes probe-able
            connection.state_version = version + 1
            connection.status_changed_at = now
            # Bookkeeping is written only where this transition changed it: the in-memory copy
            # may be older than the row (a claim's lease, say).
            touched = [
                name
                for name, old in zip(("consecutive_failures", "next_probe_at"), before, strict=True)
                if getattr(connection, name) != old
            ]
            connection.save(
                update_fields=list(
                    dict.fromkeys(
                        [*Connection.TRANSITION_FIELDS, "updated_at", *touched, *extra_fields]
                    )
                )
            )
            record = ConnectionTransition.objects.create(
                connection=connection,
                from_status=from_status,
                to_status=connection.status,
                trigger=trigger,
                user=user if trigger == Trigger.USER else None,
                reason=said.text,
                mentions=said.mentions,
                cause=cause,
                created_at=now,
            )
            hooks.transitioned(record)
            if connection.status == Status.DELETED:
                purge_collected_data(connection)
    except ConcurrentTransition:
        connection._cas = connection._cas_claim = None
        raise stale(connection, trigger) from None
    except BaseException:
        connection._cas = connection._cas_claim = None
        connection.refresh_from_db()
        raise
    connection._cas = connection._cas_claim = None
    log.info(
        "transition connection=%s from=%s to=%s trigger=%s user=%s",
        connection.pk,
        from_status,
        connection.status,
        trigger,
        record.user_id,
    )
    return record


def purge_collected_data(connection: Connection) -> None:
    """What deletion removes: probe history and anything collected, and environment membership."""
    ProbeResult.objects.filter(connection=connection).delete()
    ProbeRollup.objects.filter(connection=connection).delete()
    DiscoveredResource.objects.filter(cluster=connection).delete()
    MetricSample.objects.filter(connection=connection).delete()
    # A tombstone holds no credential: the credential stays its owner's to delete.
    Connection.all_objects.filter(pk=connection.pk).update(credential=None)
    connection.credential = None
    connection.environments.clear()


def perform_user_action(
    connection: Connection,
    target: str,
    *,
    user: Any,
    reason: str = "",
    outcome: ProbeOutcome | None = None,
) -> ConnectionTransition:
    """A user's action from any front end (admin, UI, API): Register runs the check first
    (or uses ``outcome``, a check already run for it)."""
    item = available(connection, Trigger.USER).get(target)
    if item is not None and not item.has_perm(connection, user):
        raise PermissionDenied(f"You may not change the state of '{connection.name}'.")
    if item is None or item.name != "register":
        # every other edge, ending maintenance toward Registered included, needs no check
        return transition(connection, target, trigger=Trigger.USER, user=user, reason=reason)
    if outcome is None:
        if not stake(connection):
            raise stale(connection)
        outcome = check_reachability(connection)
    if outcome.ok:
        return transition(
            connection,
            Status.REGISTERED,
            trigger=Trigger.USER,
            user=user,
            reason=reason or "reachability check passed",
        )
    if Status.NOT_FOUND in available(connection, Trigger.USER):
        return transition(
            connection,
            Status.NOT_FOUND,
            trigger=Trigger.USER,
            user=user,
            reason=f"the reachability check failed: {outcome.said(connection.url)}",
        )
    raise RegistrationFailed(
        f"'{connection.name}' stays {connection.get_status_display()}: the reachability check "
        f"failed. {outcome.said(connection.url)}",
        outcome,
        connection.url,
    )


def stake(connection: Connection) -> bool:
    """A user's action that checks before it acts (Register) makes the row's version newer
    before the check, by compare-and-set on the version it loaded: a probe that started earlier
    and lands during the check then loses its own compare-and-set, and the user's action,
    applied against the staked version, wins. False (nothing changed) when the row changed
    since it was loaded: the action is stale, as its transition would have found."""
    staked = Connection.all_objects.filter(
        pk=connection.pk, status=connection.status, state_version=connection.state_version
    ).update(state_version=F("state_version") + 1)
    if staked:
        connection.state_version += 1
    return bool(staked)


def stale(connection: Connection, trigger: str = Trigger.USER) -> StaleState:
    """The loser's answer: the row as it is now, and nothing applied."""
    connection.refresh_from_db()
    return StaleState(
        f"'{connection.name}' changed to {connection.get_status_display()} while this action "
        f"was being taken; nothing was applied.",
        current=connection.status,
        allowed=[s for s in Status.values if s in available(connection, trigger)],
    )


@dataclass
class BulkReport:
    """What a bulk action did: the names changed, and (name, why) for each one refused."""

    action: str
    changed: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The API's answer: {"changed": [names], "refused": [{"name", "reason"}]}."""
        return {
            "changed": self.changed,
            "refused": [{"name": name, "reason": why} for name, why in self.refused],
        }

    def summary(self) -> str:
        names = ", ".join(self.changed[:10]) + (" …" if len(self.changed) > 10 else "")
        return f"{self.action}: {len(self.changed)} connection(s) ({names})."

    def refusal_texts(self) -> list[str]:
        """Each refusal as one sentence naming its connection once: the reasons of the
        lifecycle already start with the quoted name; a short reason gets it in front."""
        texts = []
        for name, why in self.refused:
            why = why.strip()
            if why.startswith(f"'{name}'"):
                texts.append(why if why.endswith(".") else why + ".")
            else:
                texts.append(f"'{name}' was left unchanged: {why.rstrip('.')}.")
        return texts


def perform_bulk_action(
    connections: list[Connection], target: str, *, user: Any, reason: str = ""
) -> BulkReport:
    """One user action on many connections; each refusal is reported by name, never skipped.

    ``target="resume"`` ends maintenance (each back to where it came from). Register runs the
    reachability checks of all eligible connections at once, concurrently.
    """
    action = "Ended maintenance" if target == "resume" else f"Moved to {LABELS.get(target)}"
    report = BulkReport(action)
    outcomes: dict[int, ProbeOutcome] = {}
    if target == Status.REGISTERED:
        eligible = [
            c
            for c in connections
            if (item := available(c, Trigger.USER).get(Status.REGISTERED)) is not None
            and item.name == "register"
            and item.has_perm(c, user)  # nobody probes what they may not change
        ]
        changed = {c.pk for c in eligible if not stake(c)}  # their transitions report it
        eligible = [c for c in eligible if c.pk not in changed]
        outcomes = dict(zip([c.pk for c in eligible], probe_many(eligible), strict=True))
    for connection in connections:
        wanted = target
        if target == "resume":
            if connection.status != Status.MAINTENANCE:
                report.refused.append((connection.name, "it is not in maintenance"))
                continue
            wanted = resume_target(connection)
        try:
            perform_user_action(
                connection, wanted, user=user, reason=reason, outcome=outcomes.get(connection.pk)
            )
        except (TransitionRefused, RegistrationFailed) as exc:
            report.refused.append((connection.name, str(exc)))
        except PermissionDenied:
            report.refused.append((connection.name, "you may not change its state"))
        else:
            report.changed.append(connection.name)
    return report
