"""Upgrades with the old release still running: the migration job runs first, then the new
pods replace the old ones, which keep writing meanwhile. A column a release adds must not
refuse their rows."""

import pytest
from django.db import connection as db

from connections.models import Connection, ConnectionTransition

pytestmark = pytest.mark.django_db

# (model, column) added since a release that is still running during an upgrade
ADDED = [(ConnectionTransition, "cause"), (Connection, "last_probe_class")]


@pytest.mark.parametrize(("model", "column"), ADDED)
def test_a_row_written_without_a_new_column_gets_its_default(model, column):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT column_default, is_nullable FROM information_schema.columns"
            " WHERE table_name = %s AND column_name = %s",
            [model._meta.db_table, column],
        )
        default, nullable = cursor.fetchone()
    assert nullable == "NO" and default is not None, f"{column} has no default in the database"


def test_an_old_release_records_a_transition(make_connection):
    """The insert the release before 'cause' made: it lands, with an empty cause."""
    connection = make_connection("registered")
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO connections_connectiontransition"
            " (connection_id, from_status, to_status, trigger, reason, mentions, created_at)"
            " VALUES (%s, 'registered', 'connected', 'user', '', '{}', now()) RETURNING id",
            [connection.pk],
        )
        (pk,) = cursor.fetchone()
    assert ConnectionTransition.objects.get(pk=pk).cause == ""
