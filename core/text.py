"""What a line of text a person typed may hold: the one rule for control characters, used by
names everywhere, secrets and kubeconfig entries."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})  # controls (CR, LF, TAB, NUL…), U+2028, U+2029
# the format characters that reorder what follows them (a name that reads backwards)
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control_characters(text: str, *, format_characters: bool = False) -> bool:
    """Any control or line/paragraph separator character (U+0085, U+2028 included); with
    ``format_characters``, any invisible format character too (zero-width, bidi)."""
    categories = _LINE_BREAKING | {"Cf"} if format_characters else _LINE_BREAKING
    return any(unicodedata.category(ch) in categories for ch in text)


def validate_name(value: str) -> None:
    """A name is one line of visible text: it goes into subjects, headers, logs and messages."""
    if has_control_characters(value) or any(ch in _BIDI_CONTROLS for ch in value):
        raise ValidationError(
            "A name is one line: no line break, tab, control or direction-changing character.",
            code="name_control_character",
        )
    if not value.strip():
        raise ValidationError("Give a name that is not only spaces.", code="name_blank")


def one_line(value: str) -> str:
    """``value`` with every control or separator character turned into a space: for text
    stored before names were checked, where it reaches a header or a log line."""
    return "".join(
        " " if unicodedata.category(ch) in _LINE_BREAKING or ch in _BIDI_CONTROLS else ch
        for ch in value
    )


def make_names_one_line(model: type) -> int:
    """Rewrite the stored names of ``model`` that break the rule (saved before it held) as one
    line; for data migrations. A rewritten name that another of the same owner already has
    gets " (2)", " (3)", …: names may be unique per owner. Returns how many changed."""
    manager = model._base_manager
    owned = any(field.attname == "owner_id" for field in model._meta.concrete_fields)
    fields = ("pk", "name", "owner_id") if owned else ("pk", "name")
    changed = []
    taken: set[tuple] = set()
    for pk, name, *owner in manager.values_list(*fields).iterator(chunk_size=5000):
        base = one_line(name).strip() or "(unnamed)"
        if base == name:
            continue
        fixed, n = base, 1
        while (*owner, fixed) in taken or (
            owned and manager.filter(owner_id=owner[0], name=fixed).exclude(pk=pk).exists()
        ):
            n += 1
            fixed = f"{base[:190]} ({n})"
        taken.add((*owner, fixed))
        changed.append(model(pk=pk, name=fixed))
    manager.bulk_update(changed, ["name"], batch_size=1000)
    return len(changed)


TAG_MAX_LENGTH = 50
_TAG_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.:/=")


def validate_tag(value: str) -> None:
    """A tag: 1–50 of a–z, 0–9 and ``- _ . : / =`` (``team=payments``, ``eu-west``), starting
    with a letter or digit. ASCII only: two tags that look alike are the same tag."""
    if not value or len(value) > TAG_MAX_LENGTH:
        raise ValidationError(f"A tag has 1 to {TAG_MAX_LENGTH} characters.", code="tag")
    if not set(value) <= _TAG_CHARACTERS or not value[0].isalnum():
        shown = f"“{value[:60]}”" if value.isprintable() else "This"
        raise ValidationError(
            f"{shown} is not a tag: use a–z, 0–9 and - _ . : / = only, starting with a "
            "letter or a digit (e.g. team=payments).",
            code="tag",
        )
