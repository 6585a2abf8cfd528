"""Pages of a large table at the cost of a small one.

* ``capped_counts``: rows per state, each counted only up to ``COUNT_CAP`` (one query, at most
  ``COUNT_CAP + 1`` rows read per state), so the summary strip of a million visible rows costs
  what it costs for a thousand. A count at the cap reads "1,000+".
* ``keyset_page``: a page that starts after (or ends before) a row, by the values of the sort
  columns, as a range read of an index (``connection_name_idx`` for the default order), instead
  of an OFFSET that reads and drops every row before it. Page numbers stay for the first
  ``OFFSET_PAGES_MAX_ROWS`` rows; past them the pager moves by cursor (Next, Previous, Last).

A cursor is the sort values and the primary key of a row, in the URL as base64url JSON. It is
not secret and not trusted: a malformed or foreign cursor is ignored (the first page), since
it can only name a position in rows the user may see anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection as db
from django.db.models import Q, QuerySet

from core.ids import parse_id
from core.times import time_problem

COUNT_CAP = 1000
# A cursor holds one value of at most 500 characters (the URL's), 4 bytes each in UTF-8, in
# base64: longer is not one of ours.
CURSOR_MAX_CHARS = 3000
OFFSET_PAGES_MAX_ROWS = 10_000

# Sortable by cursor: a column of the row itself that is never NULL, with its type.
KEYSET_FIELDS: dict[str, type] = {
    "name": str,
    "kind": str,
    "url": str,
    "created_at": datetime,
    "managed": bool,
}


def capped_counts(queryset: QuerySet, statuses: list[str], cap: int = COUNT_CAP) -> dict:
    """``{status: n}`` with n at most ``cap + 1`` (``cap + 1`` means "more than cap")."""
    if not statuses:
        return {}
    parts, params, counted = [], [], []
    for status in statuses:
        sub = queryset.filter(status=status).order_by().values("pk")[: cap + 1]
        try:
            sql, sub_params = sub.query.sql_with_params()
        except EmptyResultSet:  # matches nothing by construction (a search that found none)
            continue
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped)")
        params.extend(sub_params)
        counted.append(status)
    if not parts:
        return {}
    with db.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return {status: int(n) for status, n in zip(counted, row, strict=True) if n}


@dataclass(frozen=True)
class Cursor:
    values: tuple
    pk: int
    before: bool = False  # the page ends before this row (Previous); else starts after it

    def encode(self) -> str:
        values = [v.isoformat() if isinstance(v, datetime) else v for v in self.values]
        raw = json.dumps([values, self.pk], separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, fields: list[str], before: bool = False) -> Cursor | None:
    """The cursor in ``text`` for the sort ``fields``, or None when it is not one."""
    if not text or len(text) > CURSOR_MAX_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values, pk = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(fields):
            return None
        typed = tuple(_typed(v, KEYSET_FIELDS[f]) for v, f in zip(values, fields, strict=True))
        if not isinstance(pk, int) or parse_id(pk) is None:
            return None
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error, UnicodeError):
        return None
    return Cursor(typed, pk, before)


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None or time_problem(moment):
            raise ValueError("naive, or beyond what every zone can show")
        return moment
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    if not isinstance(value, str) or "\x00" in value or len(value) > 500:
        raise TypeError
    value.encode("utf-8")  # a lone surrogate ("\ud800" in the JSON) is no text a row holds
    return value


def keyset_order(order_by: tuple[str, ...] | list[str]) -> tuple[list[str], bool] | None:
    """(the sort fields, descending) when the order can be paged by cursor, else None.

    Only one column and the primary key, both in the same direction (what the table sorts)."""
    if not all(isinstance(o, str) for o in order_by):
        return None  # an expression (a figure sorted with its blanks last): pages by number
    columns = [o for o in order_by if o.lstrip("-") not in ("pk", "id")]
    if len(columns) != 1:
        return None
    field = columns[0].lstrip("-")
    if field not in KEYSET_FIELDS:
        return None
    return [field], columns[0].startswith("-")


def keyset_page(
    queryset: QuerySet,
    fields: list[str],
    descending: bool,
    cursor: Cursor | None,
    per_page: int,
    last: bool = False,
) -> tuple[list, bool]:
    """The rows of one page and whether there are more in the direction read."""
    backwards = last or (cursor is not None and cursor.before)
    forward_desc = descending != backwards
    sign = "-" if forward_desc else ""
    ordered = queryset.order_by(*(sign + f for f in fields), sign + "pk")
    if cursor is not None:
        ordered = ordered.filter(_beyond(fields, cursor, forward_desc))
    rows = list(ordered[: per_page + 1])
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    return rows, more


def _beyond(fields: list[str], cursor: Cursor, descending: bool) -> Q:
    """Rows strictly past the cursor in the read order: a row comparison, as an index range."""
    (field,) = fields
    (value,) = cursor.values
    op = "lt" if descending else "gt"
    # the leading bound is what an index on (field, id) reads as a range; the rest breaks ties
    bound = Q(**{f"{field}__{op}e": value})
    return bound & (Q(**{f"{field}__{op}": value}) | Q(**{f"pk__{op}": cursor.pk}))


def cursor_of(row: Any, fields: list[str], before: bool = False) -> Cursor:
    return Cursor(tuple(getattr(row, f) for f in fields), row.pk, before)


__all__ = [
    "COUNT_CAP",
    "OFFSET_PAGES_MAX_ROWS",
    "Cursor",
    "capped_counts",
    "cursor_of",
    "decode_cursor",
    "keyset_order",
    "keyset_page",
]
