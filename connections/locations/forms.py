"""The form that adds a location: a name that can be part of a queue's name, and a one-line
description."""

from __future__ import annotations

from django import forms

from core.text import has_control_characters

from ..models import Location
from ..models.location import validate_location_name

NAME_MAX_LENGTH = Location._meta.get_field("name").max_length
DESCRIPTION_MAX_LENGTH = Location._meta.get_field("description").max_length
ONE_LINE = "One line, please: no line break, tab or control character."


class LocationForm(forms.Form):
    # not stripped: "eu-west\n" is refused with the rule, not quietly made "eu-west"
    name = forms.CharField(
        label="Name",
        strip=False,
        validators=[validate_location_name],
        help_text="1 to 40 of a–z, 0–9 and -, starting and ending with a letter or digit "
        "(e.g. eu-west). It names the location's queue: it cannot be changed later.",
        widget=forms.TextInput(
            attrs={
                "maxlength": NAME_MAX_LENGTH,
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        help_text="Where it is, for people: e.g. Frankfurt, second data centre.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Location.objects.filter(name=name).exists():
            raise forms.ValidationError(
                f"There is a location named '{name}' already.", code="duplicate_location"
            )
        return name

    def clean_description(self) -> str:
        description = self.cleaned_data["description"]
        if has_control_characters(description, format_characters=True):
            raise forms.ValidationError(ONE_LINE, code="control_character")
        return description
