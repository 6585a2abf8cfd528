"""What every page form and admin form shares."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


def attach_errors(exc: ValidationError, *forms_: forms.BaseForm) -> None:
    """Put a rule module's ValidationError on the fields it names (of whichever of ``forms_``
    has them), the rest above the first form: one place for every page and admin form that
    calls a rule module (editing, channels, windows)."""
    if not hasattr(exc, "error_dict"):
        forms_[0].add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        owner = next((form for form in forms_ if field in form.fields), None)
        if owner is None:
            forms_[0].add_error(None, errors)
        else:
            owner.add_error(field, errors)
