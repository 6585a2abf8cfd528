"""The sign-in form: Django's, with the user name bounded before anyone is asked about it."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm


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
