"""The sign-in form (Django's, with the user name bounded before anyone is asked about it) and
the forms of the users page."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator

from core.text import has_control_characters, validate_name


class SignInForm(AuthenticationForm):
    """Django's form sets the user name field's ``max_length`` after the field is built, so no
    validator holds it: a longer name went on to ``authenticate()`` and to django-axes, whose
    failed-attempt record keeps at most 255 characters (a 500). Too long is now a form error:
    nobody is asked, nothing is recorded."""

    def clean_username(self) -> str:
        username = self.cleaned_data.get("username") or ""
        limit = self.fields["username"].max_length
        if limit and len(username) > limit:
            raise forms.ValidationError(
                f"A user name has at most {limit} characters.", code="username_too_long"
            )
        return username


class _OneLine:
    """A field whose raw value holds no control character (CR, LF, NUL, …): refused before
    Django strips the ends, so a line break never reaches an e-mail header or a name."""

    def to_python(self, value):
        if isinstance(value, str) and has_control_characters(value):
            raise forms.ValidationError(
                "One line, please: no line break, tab or control character.",
                code="control_character",
            )
        return super().to_python(value)


class OneLineField(_OneLine, forms.CharField):
    pass


class OneLineEmailField(_OneLine, forms.EmailField):
    pass


class InviteForm(forms.Form):
    """Whom to invite: an e-mail address no user has, and a user name none has (the address
    itself when none is given); names are optional."""

    email = OneLineEmailField(label="E-mail address", max_length=254)
    username = OneLineField(
        label="User name",
        max_length=150,
        required=False,
        validators=[UnicodeUsernameValidator()],
        help_text="What they sign in with. Empty: the e-mail address.",
    )
    first_name = OneLineField(label="First name", max_length=150, required=False)
    last_name = OneLineField(label="Last name", max_length=150, required=False)

    def clean_email(self) -> str:
        email = get_user_model().objects.normalize_email(self.cleaned_data["email"])
        existing = get_user_model().objects.filter(email__iexact=email).first()
        if existing is not None:
            raise forms.ValidationError(
                f"A user with this e-mail address exists already: '{existing.get_username()}'.",
                code="duplicate_email",
            )
        return email

    def clean_first_name(self) -> str:
        return self._name("first_name")

    def clean_last_name(self) -> str:
        return self._name("last_name")

    def _name(self, field: str) -> str:
        value = self.cleaned_data.get(field, "")
        if value:
            validate_name(value)
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        username = cleaned.get("username") or cleaned.get("email")
        if "username" in self.errors or not username:
            return cleaned
        if not cleaned.get("username") and not _fits_a_username(username):
            self.add_error(
                "username",
                "This address cannot be a user name (at most 150 letters, digits and @ . + - _): "
                "give one.",
            )
        elif get_user_model().objects.filter(username__iexact=username).exists():
            self.add_error("username", f"The user name '{username}' is taken.")
        else:
            cleaned["username"] = username
        return cleaned


def _fits_a_username(text: str) -> bool:
    try:
        UnicodeUsernameValidator()(text)
    except forms.ValidationError:
        return False
    return len(text) <= 150
