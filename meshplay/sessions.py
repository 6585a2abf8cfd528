"""Django's database sessions, with the read every request makes kept as SQL.

Every poll of an open tab reads its session first. Through the ORM that read cost 0.57 ms of
which 0.17 ms was the query (measured in one process): the rest was building the same query
again. Here it is built once per process, session model and database (in core/keptsql.py's
store), then run with the key and the time. Writing, expiry, cycling the key and signing out
are Django's, unchanged (``SESSION_ENGINE = "meshplay.sessions"``). A session model whose data
field converts what it reads (``from_db_value``) is read through the ORM, as Django does.

A key is only ever what Django makes (letters and digits, 8 to 40 of them): anything else in a
cookie is a new, empty session without a read, not a 500 (PostgreSQL refuses a NUL in text)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.db import connections, router
from django.utils import timezone

from core import keptsql

_KEY_MARKER = "kept-session-key-marker"


class SessionStore(DatabaseStore):
    def _validate_session_key(self, key):
        return bool(key) and 8 <= len(key) <= 40 and key.isascii() and key.isalnum()

    def _get_session_from_db(self):
        model = self.get_model_class()
        if hasattr(model._meta.get_field("session_data"), "from_db_value"):
            return super()._get_session_from_db()
        using = router.db_for_read(model)
        connection = connections[using]
        sql, key_at, time_at = _read_sql(model, using)
        params: list = [None, None]
        params[key_at] = self.session_key
        params[time_at] = _db_time(model, timezone.now(), connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:  # unknown or expired: as Django's own store does, a new session
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])  # load() reads no more


def _db_time(model, moment: datetime, connection):
    """``moment`` as the ORM sends ``expire_date`` to this database (SQLite: text)."""
    return model._meta.get_field("expire_date").get_db_prep_value(moment, connection)


def _read_sql(model, using: str) -> tuple[str, int, int]:
    """The read's SQL, and where the key and the time go in its parameters."""

    def build() -> tuple[str, int, int]:
        marker = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC if settings.USE_TZ else None)
        query = (
            model.objects.using(using)
            .filter(session_key=_KEY_MARKER, expire_date__gt=marker)
            .values_list("session_data")
        )
        sql, params = keptsql.compiled(query, using)
        params = list(params)
        if len(params) != 2 or _KEY_MARKER not in params:
            raise RuntimeError(f"unexpected session query parameters: {len(params)}")
        key_at = params.index(_KEY_MARKER)
        return sql, key_at, 1 - key_at

    return keptsql.kept(("session-read", model._meta.label_lower, using), build)
