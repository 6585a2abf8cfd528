"""What an id is, wherever one arrives (a URL, a form, a filter, a cursor, a JSON body): ASCII
digits for an integer from 1 to 2**63-1, the largest primary key a database holds.

Python's ``str.isdigit`` accepts ``²`` and ``①`` (``int`` then refuses them), ``int`` accepts
``٣``, ``1_0`` and surrounding spaces, and a number wider than 64 bits overflows SQLite's
binding: each of these was a 500 somewhere. Every reader of an id asks ``parse_id``, or one of
the fields and the path converter below, which ask it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.urls import register_converter
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

MAX_ID = 2**63 - 1
# In URLs (and the DRF viewsets' ``lookup_value_regex``): eighteen digits always fit 64 bits,
# so a longer id matches no URL and is a plain 404.
ID_PATTERN = "[0-9]{1,18}"
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value: Any) -> int | None:
    """The id ``value`` holds, or None when it holds none (not ASCII digits, 0, too big, a bool,
    a float that is not a whole number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, int):
        return value if 1 <= value <= MAX_ID else None
    if not isinstance(value, str) or not _DIGITS.fullmatch(value.strip()):
        return None
    number = int(value.strip())
    return number if 1 <= number <= MAX_ID else None


class IdConverter:
    """``<id:pk>`` in URL patterns."""

    regex = ID_PATTERN

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        number = int(value)
        if not 0 <= number <= 10**18 - 1:
            raise ValueError(f"{value!r} is not an id")  # reverse() then finds no match
        return str(number)


register_converter(IdConverter, "id")


class IdField(forms.Field):
    """One id (a hidden input or a select of rows)."""

    default_error_messages = {"invalid": "That is not an id from this page."}

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        number = parse_id(value)
        if number is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class IdListField(forms.Field):
    """Several ids under one name (a multiple select, or repeated hidden inputs)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": "That is not a list of ids from this page."}

    def to_python(self, value: Any) -> list[int]:
        if value in self.empty_values:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        numbers = [parse_id(item) for item in values]
        if None in numbers:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return numbers


class IdModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Rows chosen by id: a value that is no id is an invalid choice, never a query."""

    def _check_values(self, value: Any) -> Any:
        for pk in value:
            if parse_id(pk) is None:
                raise ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": str(pk)[:30]},
                )
        return super()._check_values(value)


class IdModelMultipleChoiceFilter(django_filters.ModelMultipleChoiceFilter):
    field_class = IdModelMultipleChoiceField


class IdModelChoiceField(forms.ModelChoiceField):
    """A row chosen by id: a value that is no id is an invalid choice, never a query."""

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and parse_id(value) is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


@extend_schema_field(OpenApiTypes.INT)
class IdModelChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = IdModelChoiceField


class IdQueryField(IdField):
    """An id in a query string (a filter): anything else is a 400 with this message."""

    default_error_messages = {"invalid": f"Give an id: a whole number from 1 to {MAX_ID}."}


class IdFilter(django_filters.Filter):
    """An id filter of the API and the table."""

    field_class = IdQueryField
