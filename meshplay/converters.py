"""The ``<id:pk>`` path converter: a database id, at most 18 digits.

``<int:…>`` matches any run of digits, so ``/connections/99999999999999999999999/`` reached the
database with a number wider than 64 bits (OverflowError on SQLite, a 500). Eighteen digits
always fit a signed 64-bit integer (the largest, 2**63-1, has 19), so a longer id matches no URL
and is a plain 404. Importing this module registers the converter.
"""

from django.urls import register_converter

ID_PATTERN = "[0-9]{1,18}"  # also the DRF viewsets' ``lookup_value_regex``
MAX_ID = 2**63 - 1  # the largest primary key (BigAutoField) a database holds


class IdConverter:
    regex = ID_PATTERN

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        number = int(value)
        if not 0 <= number <= 10**18 - 1:
            raise ValueError(f"{value!r} is not an id")  # reverse() then finds no match
        return str(number)


register_converter(IdConverter, "id")
