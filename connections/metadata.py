"""Writing a connection's metadata key by key, in SQL: a writer that read the row a while ago
(a discovery pass, a scrape) changes only its own keys and never undoes what a probe or a user
wrote meanwhile, as writing back a whole snapshot would."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import F, Func, JSONField, QuerySet, Value


class MergeJSON(Func):
    """``metadata`` with ``values``' keys set (PostgreSQL ``||``, SQLite ``json_patch``)."""

    output_field = JSONField()

    def __init__(self, field: str, values: dict[str, Any], keep: tuple[str, ...] = ()) -> None:
        super().__init__(F(field), Value(json.dumps(values)))
        self.keep = keep  # keys that, once present, a merge never changes

    def _sides(self, compiler, connection):
        lhs, lhs_params = compiler.compile(self.source_expressions[0])
        rhs, rhs_params = compiler.compile(self.source_expressions[1])
        return lhs, rhs, (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler, connection, **extra):
        lhs, rhs, params = self._sides(compiler, connection)
        incoming = f"({rhs})::jsonb"
        for key in self.keep:
            incoming = (
                f"({incoming} - CASE WHEN COALESCE({lhs}, '{{}}'::jsonb) ? %s THEN %s ELSE '' END)"
            )
            params = (*params, key, key)
        return f"(COALESCE({lhs}, '{{}}'::jsonb) || {incoming})", params

    def as_sqlite(self, compiler, connection, **extra):
        lhs, rhs, params = self._sides(compiler, connection)
        return f"json_patch(COALESCE({lhs}, '{{}}'), {rhs})", params


def merge_metadata(queryset: QuerySet, values: dict[str, Any], keep: tuple[str, ...] = ()) -> int:
    """Set these keys of the rows' metadata, leaving every other key as it is now (and the
    ``keep`` keys as they are once set)."""
    if not values:
        return 0
    return queryset.update(metadata=MergeJSON("metadata", values, keep))
