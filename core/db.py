"""Database functions the ORM lacks, and one run at a time, for PostgreSQL and the embedded
SQLite alike."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import connection as db
from django.db.models import FloatField, Func
from django.utils import timezone
from django.utils.dateparse import parse_datetime


class Epoch(Func):
    """A datetime as seconds since the epoch (a float): rows read by the thousand are cheaper
    to read as numbers than as datetimes (psycopg parses each timestamp's text)."""

    output_field = FloatField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra):
        template = "EXTRACT(EPOCH FROM %(expressions)s)::float8"
        return self.as_sql(compiler, connection, template=template)

    def as_sqlite(self, compiler, connection, **extra):
        # Django keeps SQLite's datetimes as UTC text (local time when USE_TZ is off: then this
        # is off by the zone's offset, as every such comparison is); Julian days to Unix seconds
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        )


def first_values(*querysets: Any) -> list[Any]:
    """The first value of each one-column queryset, in one round trip (``SELECT (q1), (q2),
    …``), each read as its own index range; times come back aware."""
    parts, params = [], []
    for queryset in querysets:
        sql, query_params = queryset.query.sql_with_params()
        parts.append(f"({sql})")
        params.extend(query_params)
    with db.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return [_aware(value) for value in row]


def _aware(value: Any) -> Any:
    if isinstance(value, str):  # SQLite hands times back as text
        value = parse_datetime(value)
    if isinstance(value, datetime) and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


@contextmanager
def exclusive(key: int):
    """A session-level advisory lock on PostgreSQL: yields whether this run holds it (a second
    run at once gets False and should return). Elsewhere (SQLite: one process): always True."""
    if db.vendor != "postgresql":
        yield True
        return
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        alone = cursor.fetchone()[0]
    try:
        yield alone
    finally:
        if alone:
            with db.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
