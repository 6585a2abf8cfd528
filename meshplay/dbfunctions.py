"""Database functions the ORM lacks, for PostgreSQL and the embedded SQLite alike."""

from __future__ import annotations

from django.db.models import FloatField, Func


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
