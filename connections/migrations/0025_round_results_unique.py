"""Two partial indexes of the locations (connections/probing/rounds.py), built CONCURRENTLY on
PostgreSQL (writes go on meanwhile):

- one result per connection, round and location: unique, on the probe results (the busiest
  table); it covers only rows of a round (none before locations are configured), but building
  it reads the table once;
- the connections in a partial outage ("down in 1 of 3 locations …"), for the overview's list:
  only those rows are in it.

A run killed halfway leaves an INVALID index behind: the next run drops it and builds it again.
Elsewhere (SQLite) they are plain partial indexes."""

from django.db import migrations, models

NAME = "unique_round_result"
PARTIAL = "connection_partial_idx"
INDEXES = {
    NAME: "UNIQUE INDEX {how} unique_round_result ON connections_proberesult"
    " (round, connection_id, location_id) WHERE round IS NOT NULL",
    PARTIAL: "INDEX {how} connection_partial_idx ON connections_connection (name, id)"
    " WHERE (locations_note)::text LIKE 'down in%%'",
}
# SQLite has no "::" cast (and needs none)
PORTABLE = {
    name: sql.replace("(locations_note)::text", "locations_note") for name, sql in INDEXES.items()
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        for definition in PORTABLE.values():
            schema_editor.execute(("CREATE " + definition).format(how="IF NOT EXISTS"))
        return
    with schema_editor.connection.cursor() as cursor:
        for name, definition in INDEXES.items():
            cursor.execute(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = %s AND NOT i.indisvalid",
                [name],
            )
            if cursor.fetchone():
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            # no parameters here: "%%" is the driver's escape, "%" the statement's own
            sql = ("CREATE " + definition).format(how="CONCURRENTLY IF NOT EXISTS")
            cursor.execute(sql.replace("%%", "%"))


def drop(apps, schema_editor):
    how = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX {how}IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("connections", "0024_locations")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(create, drop)],
            state_operations=[
                migrations.AddConstraint(
                    model_name="proberesult",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("round__isnull", False)),
                        fields=("round", "connection", "location"),
                        name=NAME,
                    ),
                ),
                migrations.AddIndex(
                    model_name="connection",
                    index=models.Index(
                        fields=("name", "id"),
                        condition=models.Q(("locations_note__startswith", "down in")),
                        name=PARTIAL,
                    ),
                ),
            ],
        )
    ]
