"""The list of a form's connection picker: a multiple select that renders the chosen rows
(selected, so they stay chosen when the form comes back with an error) and the first others of
the field's own choices, not every row the user may choose; the search box beside it
(``views.options``) brings the rest. The field's queryset still decides what is accepted."""

from __future__ import annotations

from django import forms

from core.ids import parse_id

from . import LIMIT

MAX_CHOSEN = 1000  # chosen rows drawn back at most (a form refuses far fewer)


class PickerSelectMultiple(forms.SelectMultiple):
    """For a ModelMultipleChoiceField: its chosen rows first, then the first LIMIT others."""

    def optgroups(self, name: str, value: list[str], attrs: dict | None = None) -> list:
        every = self.choices
        queryset = getattr(every, "queryset", None)
        if queryset is None:  # plain choices: nothing to bound
            return super().optgroups(name, value, attrs)
        chosen = {i for i in (parse_id(v) for v in value[:MAX_CHOSEN]) if i}
        rows = [*queryset.filter(pk__in=chosen), *queryset.exclude(pk__in=chosen)[:LIMIT]]
        self.choices = [every.choice(row) for row in rows]
        try:
            return super().optgroups(name, value, attrs)
        finally:
            self.choices = every
