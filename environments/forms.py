"""Forms of the environment pages. Every id a page posts is read by ``IdField``: ASCII digits, from
1 to 2**63-1, so a bad one is a form error (a 400 with a message), never a ValueError or an
OverflowError in a query."""

import re

from django import forms
from django.contrib.auth import get_user_model

from meshplay.converters import MAX_ID

from .models import Environment, EnvironmentMembership

_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value) -> int | None:
    """The id a form field holds, or None when it is not one (not ASCII digits, 0, too big)."""
    text = str(value).strip()
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


class IdField(forms.Field):
    """One id (a hidden input or a select of rows)."""

    default_error_messages = {"invalid": "That is not an id from this page."}

    def to_python(self, value):
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

    def to_python(self, value):
        if value in self.empty_values:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        numbers = [parse_id(item) for item in values]
        if None in numbers:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return numbers


class EnvironmentForm(forms.ModelForm):
    class Meta:
        model = Environment
        fields = ("name", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        twins = Environment.objects.filter(owner=self.owner, name=name).exclude(pk=self.instance.pk)
        if twins.exists():
            raise forms.ValidationError("You already have an environment so named.")
        return name


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=EnvironmentMembership.Role.choices)

    def __init__(self, *args, environment, **kwargs):
        super().__init__(*args, **kwargs)
        self.environment = environment

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"There is no user '{username}'.")
        if user.pk == self.environment.owner_id:
            raise forms.ValidationError("The owner is always a member.")
        return user


class ConnectionIdsForm(forms.Form):
    """Connections to assign to (or remove from) an environment."""

    connection = IdListField(
        required=False,
        error_messages={"invalid": "Choose connections from the list."},
    )


class CredentialIdForm(forms.Form):
    """A credential to share through an environment (or stop sharing)."""

    credential = IdField(
        error_messages={
            "required": "Choose a credential.",
            "invalid": "Choose a credential from the list.",
        }
    )


class MemberIdForm(forms.Form):
    """A membership to remove."""

    remove = IdField(error_messages={"invalid": "Choose a member from the list."})
