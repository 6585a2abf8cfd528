"""Connections and their lifecycle history.

``Connection.status`` is a protected django-fsm field: the ``@transition`` methods below are the
edges of ``shared/spec/lifecycle.md`` and nothing else. Callers never call them directly; they go
through ``connections.lifecycle.transition``, which checks permission, compare-and-sets the row and
writes the history in one transaction.

(Over 400 lines, on purpose: django-fsm wants every edge as a method of the model, and the
edges are the spec's table, read best in one place.)
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import JSONObject
from django.utils import timezone
from django_fsm import GET_STATE, ConcurrentTransition, FSMField, FSMModelMixin, transition

from connections.choices import PROBED_STATES, MaintenanceSource, Status, Trigger
from connections.identity import endpoint_identity, validate_endpoint_url
from connections.kinds import get_kind, kind_choices
from core import access
from core.sanitize import json_problem
from core.text import validate_name
from credentials.models import Credential

from .location import QUORUM_NUMBER_MAX, Quorum


def can_administer(instance: Connection, user: Any) -> bool:
    """Who may take a user action on a connection (the ``permission=`` of user edges)."""
    return access.may(user, instance, access.TRANSITION)


def is_managed(instance: Connection) -> bool:
    return instance.managed


def is_unmanaged(instance: Connection) -> bool:
    return not instance.managed


def is_self_connecting(instance: Connection) -> bool:
    return get_kind(instance.kind).self_connecting


def resume_target(instance: Connection) -> str:
    """Where a connection returns after maintenance or after it was lost: connected if it was."""
    return Status.CONNECTED if instance.resume_status == Status.CONNECTED else Status.REGISTERED


def is_scheduled_maintenance(instance: Connection) -> bool:
    """A schedule only ends the maintenance a schedule started."""
    return instance.maintenance_source == MaintenanceSource.SCHEDULE


def _user(label: str, *, admin: bool = True) -> dict[str, Any]:
    return {"trigger": Trigger.USER, "label": label, "admin": admin}


def _automatic(trigger: str, label: str) -> dict[str, Any]:
    return {"trigger": trigger, "label": label, "admin": False}


ALL_BUT_DELETED = [status for status in Status.values if status != Status.DELETED]


class ConnectionQuerySet(access.RestrictedQuerySet):
    """``restrict(user, action)``: the rule of ``core.access`` (registered in ``apps.py``)."""

    def live(self) -> ConnectionQuerySet:
        return self.exclude(status=Status.DELETED)

    def probed(self) -> ConnectionQuerySet:
        return self.filter(status__in=PROBED_STATES)


class LiveConnectionManager(models.Manager.from_queryset(ConnectionQuerySet)):
    """The default manager: deleted connections are tombstones, hidden unless asked for."""

    def get_queryset(self) -> ConnectionQuerySet:
        return super().get_queryset().live()


def validate_quorum(value: str) -> None:
    if value in Quorum.values:
        return
    if not (
        value.isascii()
        and value.isdigit()
        and not value.startswith("0")
        and 1 <= int(value) <= QUORUM_NUMBER_MAX
    ):
        raise ValidationError(
            f"A quorum is “any”, “all”, a majority (empty) or a number of locations from 1 to "
            f"{QUORUM_NUMBER_MAX}.",
            code="quorum",
        )


class Connection(FSMModelMixin, models.Model):
    name = models.CharField(max_length=200, validators=[validate_name])
    kind = models.CharField(max_length=32, choices=kind_choices)
    url = models.CharField("URL", max_length=500, validators=[validate_endpoint_url])
    status = FSMField(
        max_length=16,
        choices=Status.choices,
        default=Status.DISCOVERED,
        protected=True,
        db_index=True,
    )
    managed = models.BooleanField(
        default=False, help_text="Created by discovery (managed) or added by hand (unmanaged)."
    )
    metadata = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="connections",
    )
    credential = models.ForeignKey(
        Credential,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="connections",
    )
    cluster = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="discovered_connections",
        help_text="For a discovered connection: the Kubernetes cluster it was found in.",
    )
    identity = models.CharField(
        max_length=600,
        editable=False,
        help_text="Deterministic: one endpoint or discovered resource, one live row.",
    )

    # Lifecycle bookkeeping: the version is bumped by every transition (compare-and-set), and
    # resume_status remembers where maintenance or a lost connection returns to.
    state_version = models.PositiveIntegerField(default=0, editable=False)
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    resume_status = models.CharField(max_length=16, blank=True, editable=False)
    # Who started the current maintenance (empty outside maintenance): a schedule never ends
    # the maintenance a user started.
    maintenance_source = models.CharField(
        max_length=16, blank=True, choices=MaintenanceSource.choices, editable=False
    )

    # Probe bookkeeping.
    failure_threshold = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(2), MaxValueValidator(100)],
        help_text="Consecutive failed probes before a reachable state is left (one never is).",
    )
    probe_interval = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(86400)],
        help_text="Seconds between health checks while reachable.",
    )
    retry_interval = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds between probes after a failure, until the threshold is reached: "
        "an outage is confirmed in seconds, not in whole intervals.",
    )
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    next_probe_at = models.DateTimeField(
        null=True, blank=True, default=timezone.now, editable=False
    )
    # Set by the scheduler when it hands the connection to a probe batch; the batch only
    # applies its results while the claim is still its own.
    probe_claim = models.UUIDField(null=True, blank=True, editable=False)
    # The time the claimed probe is due: the batch starts it then, not when it got the claim.
    probe_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_probe_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_probe_ok = models.BooleanField(null=True, editable=False)
    last_probe_error = models.TextField(blank=True, editable=False)
    # the failed probe's error class ("auth", "connect", "timeout", …): what decides, not words
    # db_default too: a release still running while the migration ran writes rows without it
    last_probe_class = models.CharField(
        max_length=16, blank=True, default="", db_default="", editable=False
    )
    last_latency_ms = models.FloatField(null=True, blank=True, editable=False)
    # Uptime (% of probes that succeeded) over the last 24 h / 7 d / 30 d and the mean latency
    # of the last 24 h's successful probes, kept by connections.probing.uptime for the table to
    # show and sort; NULL: no probe in that window ("no data", never a made-up 100 %).
    uptime_24h = models.FloatField(null=True, blank=True, editable=False)
    uptime_7d = models.FloatField(null=True, blank=True, editable=False)
    uptime_30d = models.FloatField(null=True, blank=True, editable=False)
    latency_mean_ms = models.FloatField(null=True, blank=True, editable=False)

    tags = models.ManyToManyField("connections.Tag", blank=True, related_name="connections")

    # Where it is probed from (connections/probing/rounds.py): these locations; none chosen,
    # its environments' default locations; none there either, every location.
    locations = models.ManyToManyField(
        "connections.Location", blank=True, related_name="connections"
    )
    # How many failing locations fail a round: "" a majority of those that answered (at
    # least 2 when 2 or more answered), "any", "all", or a number.
    quorum = models.CharField(
        max_length=8, blank=True, default="", db_default="", validators=[validate_quorum]
    )
    # What the last round saw beyond the state, as people say it: "down in 1 of 3 locations
    # (eu-west: …)", "only 1 of 3 locations answered"; empty when every location agreed.
    locations_note = models.CharField(
        max_length=500, blank=True, default="", db_default="", editable=False
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LiveConnectionManager()
    all_objects = models.Manager.from_queryset(ConnectionQuerySet)()

    # Fields a transition writes; every other save leaves them alone.
    TRANSITION_FIELDS = (
        "status",
        "state_version",
        "status_changed_at",
        "resume_status",
        "maintenance_source",
    )

    class Meta:
        ordering = ("name", "pk")
        permissions = [("transition_connection", "Can change the state of any connection")]
        constraints = [
            models.UniqueConstraint(
                fields=("identity",),
                condition=~Q(status="deleted"),
                name="unique_live_connection_identity",
                violation_error_message="This endpoint is already tracked by another connection.",
            )
        ]
        indexes = [
            # the connections in a partial outage, for the overview (migration 0025)
            models.Index(
                fields=("name", "id"),
                condition=Q(locations_note__startswith="down in"),
                name="connection_partial_idx",
            ),
            models.Index(
                fields=("next_probe_at",),
                condition=Q(status__in=[str(state) for state in PROBED_STATES]),
                name="connection_probe_due_idx",
            ),
            # the claimed rows (in flight, or of a lost batch): when they were due
            models.Index(
                fields=("probe_due_at",),
                condition=Q(probe_claim__isnull=False),
                name="connection_claimed_due_idx",
            ),
            models.Index(fields=("kind", "status"), name="connection_kind_status_idx"),
            # the table's default order: a page is an index range, not a sort of every row
            models.Index(fields=("name", "id"), name="connection_name_idx"),
            # the worst first (the usual look): an index range too
            models.Index(fields=("uptime_24h", "id"), name="connection_uptime_24h_idx"),
        ]

    # What a probe result depends on: editing one of these invalidates results in flight.
    ENDPOINT_FIELDS = ("url", "kind", "credential_id", "metadata")
    PROBE_BOOKKEEPING = (
        "consecutive_failures",
        "next_probe_at",
        "probe_claim",
        "probe_due_at",
        "last_probe_at",
        "last_probe_ok",
        "last_probe_error",
        "last_probe_class",
        "last_latency_ms",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cas: tuple[str, int] | None = None
        self._cas_claim = None
        self._loaded_endpoint = self._endpoint()

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.managed or not self.identity:
            self.identity = endpoint_identity(self.kind, self.url)
        edited = False
        if self._cas is None and not self._state.adding and kwargs.get("update_fields") is None:
            # An ordinary edit (admin form, metadata) never writes the state (only a transition,
            # through lifecycle.transition, does) nor the probes' bookkeeping.
            fields = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key
                and field.name not in self.TRANSITION_FIELDS
                and field.name not in self.PROBE_BOOKKEEPING
            ]
            edited = self._endpoint() != self._loaded_endpoint
            if edited:
                # A result probed against the old endpoint must not land: bump the version
                # it is compared with, and probe the new endpoint soon, from a clean count.
                self.state_version = models.F("state_version") + 1
                self.consecutive_failures = 0
                self.next_probe_at = timezone.now()
                self.probe_claim = None
                fields += ["state_version", "consecutive_failures", "next_probe_at", "probe_claim"]
            kwargs["update_fields"] = fields
        super().save(*args, **kwargs)
        if edited:
            self.refresh_from_db(fields=["state_version"])
        self._loaded_endpoint = self._endpoint()

    def _endpoint(self) -> tuple:
        # __dict__, not attributes: never load a deferred field just to remember it
        values = [self.__dict__.get(name) for name in self.ENDPOINT_FIELDS]
        values[-1] = json.dumps(values[-1], sort_keys=True, default=str)
        return tuple(values)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self._loaded_endpoint = self._endpoint()

    def _do_update(self, base_qs, using, pk_val, values, update_fields, forced_update):
        if self._cas is None:
            return super()._do_update(base_qs, using, pk_val, values, update_fields, forced_update)
        loaded_status, loaded_version = self._cas
        guarded = base_qs.filter(status=loaded_status, state_version=loaded_version)
        if self._cas_claim is not None:
            guarded = guarded.filter(probe_claim=self._cas_claim)
        updated = super()._do_update(guarded, using, pk_val, values, update_fields, forced_update)
        if not updated:
            raise ConcurrentTransition(
                "The connection changed state since it was loaded; nothing was applied."
            )
        return updated

    @property
    def kind_info(self):
        return get_kind(self.kind)

    # ---- the edges of shared/spec/lifecycle.md -------------------------------------------
    # Method bodies only keep bookkeeping; lifecycle.transition persists and records.

    @transition(
        field=status,
        source=[Status.DISCOVERED, Status.IGNORED, Status.NOT_FOUND],
        target=Status.REGISTERED,
        permission=can_administer,
        custom=_user("Register"),
    )
    def register(self) -> None:
        """The user's Register: the caller ran the reachability check and it passed."""
        self.consecutive_failures = 0

    @transition(
        field=status,
        source=Status.IGNORED,
        target=Status.NOT_FOUND,
        permission=can_administer,
        custom=_user("Register again (check failed)", admin=False),
    )
    def fail_registration(self) -> None:
        """Register again from ignored, and the reachability check failed."""

    @transition(
        field=status,
        source=Status.REGISTERED,
        target=Status.CONNECTED,
        permission=can_administer,
        custom=_user("Connect"),
    )
    def connect(self) -> None:
        pass

    @transition(
        field=status,
        source=[Status.REGISTERED, Status.CONNECTED],
        target=Status.MAINTENANCE,
        permission=can_administer,
        custom=_user("Start maintenance"),
    )
    def start_maintenance(self) -> None:
        self.resume_status = self.status
        self.maintenance_source = MaintenanceSource.USER

    @transition(
        field=status,
        source=Status.MAINTENANCE,
        target=GET_STATE(resume_target, states=[Status.CONNECTED, Status.REGISTERED]),
        permission=can_administer,
        custom=_user("End maintenance"),
    )
    def end_maintenance(self) -> None:
        """A user may end any maintenance, a scheduled one included."""
        self.consecutive_failures = 0
        self.maintenance_source = ""

    @transition(
        field=status,
        source=[Status.REGISTERED, Status.CONNECTED],
        target=Status.MAINTENANCE,
        custom=_automatic(Trigger.SCHEDULE, "Maintenance window started"),
    )
    def schedule_start_maintenance(self) -> None:
        self.resume_status = self.status
        self.maintenance_source = MaintenanceSource.SCHEDULE

    @transition(
        field=status,
        source=Status.MAINTENANCE,
        target=GET_STATE(resume_target, states=[Status.CONNECTED, Status.REGISTERED]),
        conditions=[is_scheduled_maintenance],
        custom=_automatic(Trigger.SCHEDULE, "Maintenance window ended"),
    )
    def schedule_end_maintenance(self) -> None:
        self.consecutive_failures = 0
        self.maintenance_source = ""

    @transition(
        field=status,
        source=[Status.DISCOVERED, Status.REGISTERED, Status.CONNECTED, Status.DISCONNECTED],
        target=Status.IGNORED,
        permission=can_administer,
        custom=_user("Ignore"),
    )
    def ignore(self) -> None:
        pass

    @transition(
        field=status,
        source=ALL_BUT_DELETED,
        target=Status.DELETED,
        permission=can_administer,
        custom=_user("Delete"),
    )
    def mark_deleted(self) -> None:
        """Tombstone: lifecycle.transition purges collected data in the same transaction."""
        self.next_probe_at = None
        self.maintenance_source = ""

    @transition(
        field=status,
        source=Status.DISCOVERED,
        target=Status.REGISTERED,
        custom=_automatic(Trigger.PROBE, "Reachable"),
    )
    def probe_register(self) -> None:
        pass

    @transition(
        field=status,
        source=Status.REGISTERED,
        target=Status.CONNECTED,
        conditions=[is_self_connecting],
        custom=_automatic(Trigger.PROBE, "Connected itself"),
    )
    def probe_connect(self) -> None:
        pass

    @transition(
        field=status,
        source=Status.REGISTERED,
        target=Status.NOT_FOUND,
        conditions=[is_unmanaged],
        custom=_automatic(Trigger.PROBE, "Unreachable (unmanaged)"),
    )
    def probe_not_found(self) -> None:
        pass

    @transition(
        field=status,
        source=[Status.DISCOVERED, Status.CONNECTED],
        target=Status.DISCONNECTED,
        custom=_automatic(Trigger.PROBE, "Unreachable"),
    )
    @transition(
        field=status,
        source=Status.REGISTERED,
        target=Status.DISCONNECTED,
        conditions=[is_managed],
        custom=_automatic(Trigger.PROBE, "Unreachable"),
    )
    def probe_disconnect(self) -> None:
        self.resume_status = self.status

    @transition(
        field=status,
        source=Status.DISCONNECTED,
        target=GET_STATE(resume_target, states=[Status.CONNECTED, Status.REGISTERED]),
        custom=_automatic(Trigger.PROBE, "Reachable again"),
    )
    def probe_recover(self) -> None:
        self.consecutive_failures = 0

    @transition(
        field=status,
        source=[Status.DISCOVERED, Status.REGISTERED, Status.CONNECTED],
        target=Status.DISCONNECTED,
        conditions=[is_managed],
        custom=_automatic(Trigger.DISCOVERY, "Vanished from its cluster"),
    )
    def discovery_vanish(self) -> None:
        self.resume_status = self.status

    def clean_fields(self, exclude=None) -> None:
        # The state is validated by the state machine, and clean_fields would assign it.
        super().clean_fields(exclude={*(exclude or ()), "status"})

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.metadata, dict):
            raise ValidationError({"metadata": "Metadata must be a JSON object ({...})."})
        problem = json_problem(self.metadata, settings.MAX_JSON_DEPTH)
        if problem:
            raise ValidationError({"metadata": f"Metadata cannot be stored: {problem}."})
        if len(json.dumps(self.metadata, default=str)) > 64 * 1024:
            raise ValidationError({"metadata": "Metadata is limited to 64 KiB of JSON."})
        if self.url and self.kind and not self.managed:
            self.identity = endpoint_identity(self.kind, self.url)
        # the endpoint's uniqueness and the credential's bounds: connections.editing, which
        # knows who asks
        accepted = self.kind_info.credential_kinds if self.kind else ()
        if self.credential_id and accepted and self.credential.kind not in accepted:
            raise ValidationError(
                {"credential": f"A {self.kind_info.label} connection takes: {', '.join(accepted)}."}
            )


def entered(*fields: str) -> Subquery:
    """Fields of the transition that brought each connection into its current state (the
    newest one into it): an index read of its history, for any queryset of connections. One
    field: its value; several: a dict of them, still one read per row."""
    latest = ConnectionTransition.objects.filter(
        connection_id=OuterRef("pk"), to_status=OuterRef("status")
    ).order_by("-created_at", "-pk")
    if len(fields) == 1:
        return Subquery(latest.values(fields[0])[:1])
    row = JSONObject(**{name: name for name in fields})
    return Subquery(latest.values(row=row)[:1], output_field=models.JSONField())


class ConnectionTransition(models.Model):
    """Every state change, whatever its trigger: the audit log and the UI's timeline."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(
        max_length=16, blank=True, choices=Status.choices, help_text="Empty when created."
    )
    to_status = models.CharField(max_length=16, choices=Status.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(blank=True)
    # the objects the reason names, each shown only to readers who may see it (mentions.py)
    mentions = models.JSONField(default=list, blank=True)
    # what caused it, as a class ("auth" when a probe was refused its credentials): stored so
    # that nobody decides by parsing the reason's words
    cause = models.CharField(max_length=16, blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("created_at", "pk")
        indexes = [models.Index(fields=("connection", "created_at"), name="history_conn_time_idx")]

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.from_status or '(new)'} → {self.to_status}"
