from django import forms
from django.contrib.auth import get_user_model

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
