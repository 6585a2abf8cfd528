"""One result per connection, round and location (connections/probing/rounds.py): a partial
unique index on the probe results, built CONCURRENTLY on PostgreSQL (the busiest table: writes go
on meanwhile). It covers only rows of a round (none before locations are configured), but
building it reads the table once. A run killed halfway leaves an INVALID index behind: the
next run drops it and builds it again. Elsewhere (SQLite) it is a plain partial index."""

from django.db import migrations, models

NAME = "unique_round_result"
DEFINITION = (
    f"UNIQUE INDEX {{how}} {NAME} ON connections_proberesult"
    " (round, connection_id, location_id) WHERE round IS NOT NULL"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute("CREATE " + DEFINITION.format(how="IF NOT EXISTS"))
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND NOT i.indisvalid",
            [NAME],
        )
        if cursor.fetchone():
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
        cursor.execute("CREATE " + DEFINITION.format(how="CONCURRENTLY IF NOT EXISTS"))


def drop(apps, schema_editor):
    how = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {how}IF EXISTS {NAME}")


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
                )
            ],
        )
    ]
