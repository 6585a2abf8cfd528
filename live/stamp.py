"""The change stamp: ``touch()`` after a write, ``current()`` before a render.

The stamp is bumped *after* the writer's commit (``transaction.on_commit``), never inside its
transaction: a poll that reads the stamp and then renders can only ever show data at least as
new as its stamp, so a later poll never keeps a stale page. Bumping outside the transaction
also keeps the one stamp row from serializing writers (a probe round and a bulk action never
wait on each other for it).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save

# The apps whose rows the table and the overview show, directly or through visibility.
WATCHED_APPS = frozenset({"connections", "environments", "maintenance", "credentials", "auth"})
STAMP_ROW = 1


def _bump(using: str = "default") -> None:
    from .models import ChangeStamp

    if not ChangeStamp.objects.using(using).filter(pk=STAMP_ROW).update(value=F("value") + 1):
        ChangeStamp.objects.using(using).get_or_create(pk=STAMP_ROW, defaults={"value": 1})


def touch(using: str = "default") -> None:
    """Count a change, once per transaction, after it commits (at once outside one)."""
    conn = connections[using]
    if conn.in_atomic_block and any(
        getattr(entry[1], "live_bump", False) for entry in conn.run_on_commit
    ):
        return

    def bump() -> None:
        _bump(using)

    bump.live_bump = True  # type: ignore[attr-defined]
    transaction.on_commit(bump, using=using)


def current(using: str = "default", spread: int = 0) -> str:
    """What the pages could show has not changed while this text stays the same. ``spread``
    shifts the healing time slices (by a number that differs between users and pages), so that
    open tabs do not all render again at the same second."""
    period = settings.LIVE_STAMP_HEAL_SECONDS
    heal = int((time.time() + spread % period) // period)
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT value FROM live_changestamp WHERE id = %s),"
            " (SELECT MAX(id) FROM connections_proberesult),"
            " (SELECT MAX(id) FROM connections_connectiontransition)",
            [STAMP_ROW],
        )
        row = cursor.fetchone()
    return ".".join(str(part) for part in (*row, heal))


def _changed(sender, using="default", **kwargs) -> None:
    if kwargs.get("raw"):
        return  # fixtures being loaded
    if sender._meta.app_label in WATCHED_APPS:
        touch(using)


def _changed_m2m(sender, instance, using="default", action="", **kwargs) -> None:
    if action.startswith("post_") and (
        sender._meta.app_label in WATCHED_APPS or instance._meta.app_label in WATCHED_APPS
    ):
        touch(using)


def connect_signals() -> None:
    post_save.connect(_changed, dispatch_uid="live-save")
    post_delete.connect(_changed, dispatch_uid="live-delete")
    m2m_changed.connect(_changed_m2m, dispatch_uid="live-m2m")
