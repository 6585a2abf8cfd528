"""Indexes for the table's large-fleet reads, built CONCURRENTLY on PostgreSQL (writes go on
meanwhile, and this migration may run while the old release serves):

- the 24 h uptime's sort, worst first (``uptime_24h, id``; an index range like the name's);
- trigram indexes for the search (a name or URL containing a text, any case), so that it reads
  an index instead of every visible row: pg_trgm, shipped in PostgreSQL's contrib, created here
  if the role may. Where it may not (or the extension is not installed) the migration says so
  and goes on without them: the search then reads every visible row, as before
  (docs/operations.md). Any other error stops the migration.

A run killed halfway leaves an INVALID index behind: the next run drops it and builds it again.
Elsewhere (SQLite) the uptime index is a plain one and there are no trigram indexes."""

import logging

from django.db import DatabaseError, migrations, models

log = logging.getLogger(__name__)

UPTIME_INDEX = ("connection_uptime_24h_idx", "btree (uptime_24h, id)")
TRIGRAM_INDEXES = {
    "connection_name_trgm_idx": "gin (upper((name)::text) gin_trgm_ops)",
    "connection_url_trgm_idx": "gin (upper((url)::text) gin_trgm_ops)",
}
# what "may not" looks like: no privilege, no extension files, not supported here
SKIPPABLE = {"42501", "58P01", "0A000", "42704"}


def _build(cursor, name: str, definition: str) -> None:
    cursor.execute(
        "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = %s AND NOT i.indisvalid",
        [name],
    )
    if cursor.fetchone():  # left by a run killed halfway
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    cursor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON connections_connection USING "
        + definition
    )


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {UPTIME_INDEX[0]} ON connections_connection"
            " (uptime_24h, id)"
        )
        return
    with schema_editor.connection.cursor() as cursor:
        _build(cursor, *UPTIME_INDEX)
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError as exc:
            state = getattr(exc.__cause__, "sqlstate", "")
            if state not in SKIPPABLE:
                raise
            log.warning("search indexes skipped: cannot create extension pg_trgm (%s)", exc)
            return
        for name, definition in TRIGRAM_INDEXES.items():
            _build(cursor, name, definition)


def drop(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name in (UPTIME_INDEX[0], *TRIGRAM_INDEXES):
        schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("connections", "0022_tags")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="connection",
                    index=models.Index(fields=["uptime_24h", "id"], name=UPTIME_INDEX[0]),
                )
            ],
            database_operations=[migrations.RunPython(create, drop, atomic=False)],
        )
    ]
