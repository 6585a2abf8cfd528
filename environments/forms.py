"""Forms of the environment pages. Every id a page posts is read by ``IdField``: ASCII digits, from
1 to 2**63-1, so a bad one is a form error (a 400 with a message), never a ValueError or an
OverflowError in a query."""

from django import forms
from django.contrib.auth import get_user_model

from core.ids import IdField, IdListField

from .models import Environment, EnvironmentMembership


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
