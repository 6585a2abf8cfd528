"""Tags on connections: what a tag may be, setting a connection's tags, adding or removing one on
many, and the tags a user may know of (those on connections they may see: a tag is never a way
to learn of a connection one may not see)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef

from connections.lifecycle import BulkReport
from connections.models import Connection, Tag
from core.text import validate_tag
from live.stamp import touch as touch_connections

MAX_TAGS_PER_CONNECTION = 20
# what a tags field may hold at most (20 tags of 50 characters and their separators)
MAX_TAGS_TEXT = MAX_TAGS_PER_CONNECTION * 52


def clean_tag(raw: str) -> str:
    """One tag as stored: NFKC (a full-width letter is its ASCII twin), lower case, trimmed."""
    tag = unicodedata.normalize("NFKC", raw).strip().lower()
    validate_tag(tag)
    return tag


def clean_tags(raw: str | Iterable[Any]) -> list[str]:
    """The tags in ``raw`` (a text of tags separated by commas or spaces, or a list of tags),
    each once, in the order given; every bad one is named in one ValidationError."""
    if isinstance(raw, str):
        if len(raw) > MAX_TAGS_TEXT:
            raise ValidationError(f"At most {MAX_TAGS_PER_CONNECTION} tags.", code="tags")
        parts = raw.replace(",", " ").split()
    else:
        parts = list(raw)
        if not all(isinstance(part, str) for part in parts):
            raise ValidationError("Tags are a list of texts.", code="tags")
    # a list far past the limit is refused before any is read (a 30,000-item body is work)
    if len(parts) > 2 * MAX_TAGS_PER_CONNECTION:
        raise ValidationError(f"At most {MAX_TAGS_PER_CONNECTION} tags.", code="tags")
    tags: dict[str, None] = {}  # in order, each once
    errors: list[str] = []
    for part in parts:
        try:
            tags[clean_tag(part)] = None
        except ValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ValidationError(errors[:5], code="tag")
    if len(tags) > MAX_TAGS_PER_CONNECTION:
        raise ValidationError(
            f"At most {MAX_TAGS_PER_CONNECTION} tags on a connection ({len(tags)} given).",
            code="tags",
        )
    return list(tags)


def _tags_named(names: list[str]) -> list[Tag]:
    """The tags of these names, made if new (a concurrent maker of the same name: no error)."""
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    return list(Tag.objects.filter(name__in=names))


def set_tags(connection: Connection, names: list[str]) -> None:
    """Make ``names`` (cleaned) the connection's tags."""
    with transaction.atomic():
        connection.tags.set(_tags_named(names))
    touch_connections([connection.pk])


def change_tags(connection: Connection, added: list[str], removed: list[str]) -> None:
    """Add ``added`` and remove ``removed`` (cleaned) on the connection, leaving every other tag
    as it is now (a tag someone added meanwhile stays)."""
    with transaction.atomic():
        if removed:
            connection.tags.remove(*Tag.objects.filter(name__in=removed))
        if added:
            connection.tags.add(*_tags_named(added))
    touch_connections([connection.pk])


def change_tag(connections: list[Connection], name: str, *, add: bool) -> BulkReport:
    """Add the tag ``name`` (cleaned) to each of ``connections``, or remove it: what changed by
    name, and each refused with why (one at its tag limit)."""
    through = Connection.tags.through
    ids = [c.pk for c in connections]
    report = BulkReport(action=f"{'Add' if add else 'Remove'} the tag '{name}'")
    with transaction.atomic():
        tag = Tag.objects.filter(name=name).first() if not add else _tags_named([name])[0]
        if tag is None:
            return report
        have = set(
            through.objects.filter(tag=tag, connection__in=ids).values_list(
                "connection_id", flat=True
            )
        )
        if not add:
            through.objects.filter(tag=tag, connection__in=have).delete()
            report.changed = [c.name for c in connections if c.pk in have]
            touch_connections(list(have))
            return report
        counts = dict(
            through.objects.filter(connection__in=ids)
            .order_by()
            .values("connection_id")
            .annotate(n=Count("tag_id"))
            .values_list("connection_id", "n")
        )
        rows = []
        for connection in connections:
            if connection.pk in have:
                continue
            if counts.get(connection.pk, 0) >= MAX_TAGS_PER_CONNECTION:
                report.refused.append(
                    (connection.name, f"it has {MAX_TAGS_PER_CONNECTION} tags already (the most)")
                )
                continue
            rows.append(through(connection_id=connection.pk, tag_id=tag.pk))
            report.changed.append(connection.name)
        through.objects.bulk_create(rows, ignore_conflicts=True)
    touch_connections([row.connection_id for row in rows])
    return report


def tags_of(ids: list[int]) -> dict[int, list[str]]:
    """The tags of each connection in ``ids``, by name: one query."""
    found: dict[int, list[str]] = {}
    if not ids:
        return found
    for connection_id, name in (
        Connection.tags.through.objects.filter(connection_id__in=ids)
        .order_by("tag__name")
        .values_list("connection_id", "tag__name")
    ):
        found.setdefault(connection_id, []).append(name)
    return found


def visible_tags(user: Any):
    """The tags on connections ``user`` may see, by name: a semi-join per tag (it stops at the
    first such connection), not a DISTINCT over every tagged row."""
    seen = Connection.objects.restrict(user)
    on_seen = Connection.tags.through.objects.filter(tag=OuterRef("pk"), connection__in=seen)
    return Tag.objects.filter(Exists(on_seen)).order_by("name")
