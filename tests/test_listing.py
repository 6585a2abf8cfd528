"""Large tables: capped per-state counts and pages by cursor."""

import itertools

import pytest

from connections.listing import (
    Cursor,
    capped_counts,
    cursor_of,
    decode_cursor,
    keyset_order,
    keyset_page,
)
from connections.models import Connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(make_connection):
    """23 connections, names repeating (ties broken by id), in three states."""
    states = itertools.cycle(["registered", "connected", "connected", "ignored"])
    return [
        make_connection(next(states), name=f"svc-{n % 7}", url=f"http://127.0.0.1:1/{n}")
        for n in range(23)
    ]


def test_counts_are_exact_below_the_cap_and_cap_plus_one_above(fleet):
    queryset = Connection.objects.all()
    exact = capped_counts(queryset, ["registered", "connected", "ignored", "maintenance"])
    assert exact == {"registered": 6, "connected": 12, "ignored": 5}
    capped = capped_counts(queryset, ["registered", "connected", "ignored"], cap=5)
    assert capped == {"registered": 6, "connected": 6, "ignored": 5}  # 6 reads "more than 5"


def test_counts_respect_the_queryset_filters(fleet, owner, stranger):
    fleet[0].owner = stranger
    fleet[0].save()
    counts = capped_counts(Connection.objects.restrict(owner), ["registered", "connected"])
    assert counts == {"registered": 5, "connected": 12}


def walk(queryset, fields, descending, per_page):
    seen, cursor = [], None
    while True:
        rows, more = keyset_page(queryset, fields, descending, cursor, per_page)
        seen.extend(rows)
        if not more:
            return seen
        cursor = cursor_of(rows[-1], fields)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("field", ["name", "created_at", "url"])
def test_following_next_visits_every_row_once_in_order(fleet, field, descending):
    queryset = Connection.objects.all()
    expected = list(
        queryset.order_by(("-" if descending else "") + field, "-pk" if descending else "pk")
    )
    assert walk(queryset, [field], descending, per_page=4) == expected


def test_previous_and_last_read_the_same_pages_backwards(fleet):
    queryset = Connection.objects.all()
    ordered = list(queryset.order_by("name", "pk"))
    last, more = keyset_page(queryset, ["name"], False, None, 5, last=True)
    assert last == ordered[-5:] and more
    before = cursor_of(last[0], ["name"], before=True)
    previous, more = keyset_page(queryset, ["name"], False, before, 5)
    assert previous == ordered[-10:-5] and more


def test_a_cursor_survives_its_url_and_bad_ones_are_ignored(fleet):
    row = fleet[3]
    for field in ("name", "created_at"):
        text = cursor_of(row, [field]).encode()
        assert decode_cursor(text, [field]) == Cursor((getattr(row, field),), row.pk)
    for bad in ["", "!!!", "e30", "W10", "x" * 3000, "WzEsMl0", cursor_of(row, ["name"]).encode()]:
        assert decode_cursor(bad, ["created_at"]) is None, bad


def test_only_plain_columns_are_paged_by_cursor():
    assert keyset_order(["name", "pk"]) == (["name"], False)
    assert keyset_order(["-created_at", "-pk"]) == (["created_at"], True)
    assert keyset_order(["status_rank", "name", "pk"]) is None
    assert keyset_order(["last_probe_at"]) is None  # may be NULL
