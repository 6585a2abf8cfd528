"""Texts that name other objects, shown to each reader with only what that reader may see.

A transition's reason or a quiet note may name another object: "parent db-eu is Disconnected",
"maintenance window patch night ended". Whether a reader may see that object is decided when
the text is *read*, not when it is written: a connection shared into an environment later, or
a member added since, must not read the name of a window or a parent they may not see. So a
text is stored whole (the audit log keeps what happened), with its *mentions*: for each named
object, its kind, id, the span of the text that names it and what that span says to a reader
who may not see it ("a maintenance window", "a connection it depends on is Disconnected").

``Said`` builds a text and its mentions together; ``Seen`` shows texts to a reader (or to all
of several readers at once: a channel's audience), one query per kind of object mentioned in
the batch, none when nothing is mentioned. Which objects a user may see, per kind, is asked of
the app that owns the kind (``register``, from its ``apps.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# kind -> (user, ids) -> the ids of that kind the user may see
_VISIBLE: dict[str, Callable[[Any, set[int]], set[int]]] = {}


def register(kind: str, visible: Callable[[Any, set[int]], set[int]]) -> None:
    """Say how to tell which objects of ``kind`` a user may see (an app's ``ready()``)."""
    _VISIBLE[kind] = visible


@dataclass
class Said:
    """A text and the spans of it that name objects."""

    text: str = ""
    mentions: list[dict[str, Any]] = field(default_factory=list)

    def __add__(self, other: Said | str) -> Said:
        other = other if isinstance(other, Said) else Said(other)
        shift = len(self.text)
        moved = [
            {**m, "start": m["start"] + shift, "end": m["end"] + shift} for m in other.mentions
        ]
        return Said(self.text + other.text, self.mentions + moved)

    def __radd__(self, other: str) -> Said:
        return Said(other) + self


def naming(kind: str, pk: int, phrase: str, unseen: str) -> Said:
    """``phrase`` names object ``pk`` of ``kind``; a reader who may not see it reads ``unseen``."""
    return Said(
        phrase, [{"kind": kind, "id": pk, "start": 0, "end": len(phrase), "unseen": unseen}]
    )


def joined(parts: Iterable[Said | str], separator: str = ", ") -> Said:
    result = Said()
    for n, part in enumerate(parts):
        result = result + (separator if n else "") + part
    return result


def _valid(mention: Any, length: int) -> bool:
    """A mention whose span starts inside the text (a text cut short after it was written may
    end inside a span: what is left of the span is replaced)."""
    return (
        isinstance(mention, dict)
        and isinstance(mention.get("kind"), str)
        and isinstance(mention.get("id"), int)
        and isinstance(mention.get("start"), int)
        and isinstance(mention.get("end"), int)
        and 0 <= mention["start"] <= mention["end"]
        and mention["start"] < length
        and isinstance(mention.get("unseen"), str)
    )


class Seen:
    """What ``users`` (each of them: a text is shown as the one who may see least reads it) may
    see of the objects texts mention. ``load`` the batch's mentions first, then ``text``."""

    def __init__(self, *users: Any) -> None:
        self.users = users
        self._visible: dict[str, set[int]] = defaultdict(set)
        self._asked: dict[str, set[int]] = defaultdict(set)

    def load(self, mention_lists: Iterable[Any]) -> Seen:
        wanted: dict[str, set[int]] = defaultdict(set)
        for mentions in mention_lists:
            for mention in mentions if isinstance(mentions, list) else ():
                if isinstance(mention, dict) and isinstance(mention.get("id"), int):
                    wanted[str(mention.get("kind"))].add(mention["id"])
        for kind, ids in wanted.items():
            ids -= self._asked[kind]
            if not ids:
                continue
            self._asked[kind] |= ids
            visible = _VISIBLE.get(kind)
            if visible is None or not self.users:
                continue
            seen = set(ids)
            for user in self.users:
                seen &= visible(user, seen) if seen else set()
            self._visible[kind] |= seen
        return self

    def text(self, text: str, mentions: Any) -> str:
        """``text`` with every span naming an object these readers may not see replaced."""
        if not text or not isinstance(mentions, list) or not mentions:
            return text or ""
        self.load([mentions])
        spans = [m for m in mentions if _valid(m, len(text))]
        limit = len(text)  # spans are replaced from the right; one never overlaps the next
        for mention in sorted(spans, key=lambda m: m["start"], reverse=True):
            start, end = mention["start"], min(mention["end"], limit)
            if mention["id"] not in self._visible[mention["kind"]]:
                text = text[:start] + mention["unseen"] + text[end:]
            limit = start
        return text


def read_as(user: Any, rows: Iterable[Any], *fields: tuple[str, str]) -> list[Any]:
    """Set each row's texts (``(text attribute, mentions attribute)`` pairs; default: a
    transition's or event's ``reason``) as ``user`` may read them, in memory only; one query
    per kind of object the rows name."""
    rows = list(rows)
    fields = fields or (("reason", "mentions"),)
    seen = Seen(user).load(getattr(row, m) for row in rows for _, m in fields)
    for row in rows:
        for text, mentions in fields:
            setattr(row, text, seen.text(getattr(row, text), getattr(row, mentions)))
    return rows
