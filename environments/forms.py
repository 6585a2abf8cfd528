"""Forms of the environment pages. Every id a page posts is read by ``IdField``: ASCII digits, from
1 to 2**63-1, so a bad one is a form error (a 400 with a message), never a ValueError or an
OverflowError in a query."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from core.ids import IdField, IdListField, IdModelMultipleChoiceField

from .models import Environment, EnvironmentMembership


class EnvironmentForm(forms.ModelForm):
    class Meta:
        model = Environment
        fields = ("name", "description", "probe_locations")
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "probe_locations": forms.CheckboxSelectMultiple,
        }
        field_classes = {"probe_locations": IdModelMultipleChoiceField}
        labels = {"probe_locations": "Default locations"}
        help_texts = {
            "probe_locations": "Where its connections are probed from, unless a connection "
            "chooses its own. None ticked: every location, unless another of their "
            "environments has default locations."
        }

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        # shown once a location exists (connections' locations; this layer names no model
        # of theirs): without one the form is as it was, and saving it changes none
        field = self.fields["probe_locations"]
        field.queryset = field.queryset.order_by("name")
        if not field.queryset.exists():
            del self.fields["probe_locations"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        twins = Environment.objects.filter(owner=self.owner, name=name).exclude(pk=self.instance.pk)
        if twins.exists():
            raise forms.ValidationError("You already have an environment so named.")
        return name


def member_candidates(environment: Environment) -> QuerySet:
    """Who may be made a member of ``environment``: any active user but its owner (a member
    again gets the role given)."""
    return get_user_model().objects.filter(is_active=True).exclude(pk=environment.owner_id)


class MemberForm(forms.Form):
    """A member and their role. The page's picker sends ``user`` (chosen by name, see
    ``environments/picking.py``); ``username``, typed whole, serves scripts and older pages."""

    user = IdField(required=False, error_messages={"invalid": "Choose a user from the list."})
    username = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=EnvironmentMembership.Role.choices)

    def __init__(self, *args, environment, **kwargs):
        super().__init__(*args, **kwargs)
        self.environment = environment

    def clean(self):
        data = super().clean()
        if "user" in self.errors:
            return data
        pk, username = data.get("user"), (data.get("username") or "").strip()
        if pk is None and not username:
            raise forms.ValidationError("Choose a user to add.", code="required")
        users = get_user_model().objects.filter(is_active=True)
        found = (users.filter(pk=pk) if pk is not None else users.filter(username=username)).first()
        if found is None:
            raise forms.ValidationError(
                "Choose a user from the list."
                if pk is not None
                else f"There is no user '{username}'.",
                code="unknown",
            )
        if not member_candidates(self.environment).filter(pk=found.pk).exists():
            raise forms.ValidationError("The owner is always a member.", code="owner")
        data["member"] = found
        return data


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
