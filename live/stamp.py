"""Change stamps per visible set: ``touch()`` after a write, ``current(user)`` before a render.

A write names what it changed: connections (by id; their owner's and environments' scopes are
found after the commit, in two queries for the whole transaction) or scopes. After the commit
(``transaction.on_commit``), one statement adds one to each of those scopes and to ``all``.
A user's stamp is the sum of the scopes of what they may see (``ScopeStamp``'s docstring), so a
change elsewhere never changes it: a poll tells nothing of other users' connections, and a
probe round of someone else's fleet costs an open tab nothing.

Bumping after the commit, never inside the writer's transaction: a poll that reads the stamp
and then renders shows data at least as new as its stamp, so a later poll never keeps a stale
page; and the stamp rows never hold a writer's locks (probe batches and bulk actions never wait
on each other for them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, models, transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat
from django.db.models.signals import m2m_changed, post_delete, post_save

from core import access, keptsql

ALL, EVERYONE = "all", "g"
UPSERT_CHUNK = 500


def touch(
    connection_ids: Iterable[int] = (), scopes: Iterable[str] = (), using: str = "default"
) -> None:
    """Count a change of these connections / scopes, once per transaction, after it commits
    (at once outside one)."""
    conn = connections[using]
    pending = None
    if conn.in_atomic_block:
        for entry in conn.run_on_commit:
            pending = getattr(entry[1], "live_pending", None)
            if pending is not None:
                break
    first = pending is None  # the first change of this transaction: one flush after its commit
    if first:
        pending = {"ids": set(), "scopes": set()}
    pending["ids"].update(connection_ids)
    pending["scopes"].update(scopes)
    if first:

        def flush() -> None:
            _flush(pending, using)

        flush.live_pending = pending  # type: ignore[attr-defined]
        transaction.on_commit(flush, using=using)  # outside a transaction: at once


def _flush(pending: dict, using: str) -> None:
    scopes = {ALL, *pending["scopes"]}
    ids = sorted(pending["ids"])
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for resolve in _resolvers:
            scopes.update(resolve(chunk, using))
    scopes.discard("o:None")
    ordered = sorted(scopes)  # one order for every writer: no two upserts wait on each other
    with connections[using].cursor() as cursor:
        for start in range(0, len(ordered), UPSERT_CHUNK):
            chunk = ordered[start : start + UPSERT_CHUNK]
            cursor.execute(
                "INSERT INTO live_scopestamp (scope, value) VALUES "
                + ", ".join(["(%s, 1)"] * len(chunk))
                + " ON CONFLICT (scope) DO UPDATE SET value = live_scopestamp.value + 1",
                chunk,
            )


def scopes_of(user) -> Q:
    """The scopes of what ``user`` may see, as a filter of ``ScopeStamp`` (one rule: the
    environments are those ``core.access`` says the user owns or belongs to)."""
    if access.sees_all(user, access.environment_model()):
        return Q(scope=ALL)
    environments = (
        access.environments_of(user, access.EVERY_ROLE)
        .order_by()
        .annotate(scope_name=Concat(Value("e:"), Cast("pk", CharField())))
        .values("scope_name")
    )
    fixed = [EVERYONE, f"o:{user.pk}", f"u:{user.pk}"]
    return Q(scope__in=fixed) | Q(scope__in=environments)


def current(user, using: str = "default") -> str:
    """What ``user``'s pages could show has not changed while this text stays the same."""
    total, count = keptsql.fetch_one("live-stamp", user, _stamp_query, using)
    return f"{total or 0}.{count}"


def _stamp_query(user, using: str) -> tuple[str, tuple]:
    """Every poll asks for its user's stamp: the SQL is kept per process (core/keptsql.py)."""
    from .models import ScopeStamp

    rows = ScopeStamp.objects.using(using).filter(scopes_of(user)).values("value").order_by()
    sql, params = keptsql.compiled(rows, using)
    return f"SELECT SUM(s.value), COUNT(*) FROM ({sql}) s", params


# ---- what the signals see -----------------------------------------------------------------
#
# Each app says, in its ``apps.py``, which of its models a polled page shows and what a saved or
# deleted row of one changes (``watch``); rows of models nobody registered change nothing. The
# app that owns connections says how to find the scopes of connection ids (``resolve``), and
# which model's ids a many-to-many change names (``connection_model``).

Rows = Callable[[Any], tuple[set[int], set[str]]]
_watched: dict[type[models.Model], Rows] = {}
_resolvers: list[Callable[[list[int], str], Iterable[str]]] = []
_connection_models: set[type[models.Model]] = set()


def everyone(instance: Any) -> tuple[set[int], set[str]]:
    """A row every user's pages may show (a window, a credential): everyone's stamp changes."""
    return set(), {EVERYONE}


def watch(model: type[models.Model], rows: Rows = everyone) -> None:
    _watched[model] = rows


def resolve(resolver: Callable[[list[int], str], Iterable[str]]) -> None:
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def connection_model(model: type[models.Model]) -> None:
    _connection_models.add(model)


def _rows_of(instance: Any) -> tuple[set[int], set[str]] | None:
    rows = _watched.get(type(instance)._meta.concrete_model)
    return rows(instance) if rows is not None else None


def _changed(sender, instance, using="default", **kwargs) -> None:
    if kwargs.get("raw"):
        return
    found = _rows_of(instance)
    if found is None:
        return
    ids, scopes = found
    if not ids and not scopes:
        return
    if kwargs.get("signal") is post_delete:
        scopes.add(EVERYONE)  # its links (environments) are gone with it: tell everyone
    touch(ids, scopes, using)


def _changed_m2m(sender, instance, using="default", action="", pk_set=None, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    found = _rows_of(instance)
    if found is None:
        return
    ids, scopes = found
    model = kwargs.get("model")
    if model is not None and model._meta.concrete_model in _connection_models:
        ids |= set(pk_set or ())
    if action == "post_clear":
        scopes.add(EVERYONE)
    touch(ids, scopes, using)


def connect_signals() -> None:
    post_save.connect(_changed, dispatch_uid="live-save")
    post_delete.connect(_changed, dispatch_uid="live-delete")
    m2m_changed.connect(_changed_m2m, dispatch_uid="live-m2m")
