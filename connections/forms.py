"""Forms of the connection pages; every choice list is restricted to what the user may use."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from environments.models import Environment

from .choices import Status
from .kinds import kind_choices
from .models import Credential
from .secrets import WriteOnlyTextarea, parse_kubeconfig, secret_values

MAX_KUBECONFIG_BYTES = 512 * 1024


class AddConnectionForm(forms.Form):
    kind = forms.ChoiceField(choices=kind_choices)
    name = forms.CharField(max_length=200)
    url = forms.CharField(label="URL", max_length=500, help_text="http:// or https://")
    credential = forms.ModelChoiceField(
        queryset=Credential.objects.none(), required=False, empty_label="(none)"
    )
    new_credential_kind = forms.ChoiceField(
        label="…or a new credential",
        choices=[("", "(none)"), *Credential.Kind.choices],
        required=False,
    )
    new_credential_name = forms.CharField(max_length=200, required=False, label="Its name")
    new_credential_username = forms.CharField(
        max_length=200, required=False, label="Username (basic auth)"
    )
    new_credential_secret = forms.CharField(
        required=False,
        label="Secret",
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Token, password, API key or kubeconfig; stored encrypted, never shown again.",
    )
    environments = forms.ModelMultipleChoiceField(
        queryset=Environment.objects.none(), required=False
    )
    failure_threshold = forms.IntegerField(min_value=2, max_value=100, initial=3)
    probe_interval = forms.IntegerField(
        min_value=5, max_value=86400, initial=settings.PROBE_INTERVAL, label="Probe every (s)"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["credential"].queryset = Credential.objects.restrict(user)
        self.fields["environments"].queryset = Environment.objects.restrict(user, "change")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            parts = urlsplit(url.strip())
            has_userinfo = bool(parts.username or parts.password)
        except ValueError:
            return url  # the model's validator names the problem
        if has_userinfo:
            self.data = self.data.copy()
            self.data["url"] = ""  # never send a typed password back in the page
            raise ValidationError(
                "Put no user name or password in the URL: attach a credential instead."
            )
        return url

    def clean(self):
        cleaned = super().clean()
        new_kind = cleaned.get("new_credential_kind")
        if new_kind and cleaned.get("credential"):
            raise ValidationError("Choose an existing credential or create a new one, not both.")
        if new_kind:
            name = cleaned.get("new_credential_name") or f"{cleaned.get('name', 'connection')}"
            credential = Credential(name=name, kind=new_kind, owner=self.user)
            try:
                credential.set_secret(
                    secret_values(
                        new_kind,
                        secret=cleaned.get("new_credential_secret", ""),
                        username=cleaned.get("new_credential_username", ""),
                    )
                )
            except ValidationError as exc:
                self.add_error("new_credential_secret", exc)
            else:
                if Credential.objects.filter(owner=self.user, name=name).exists():
                    self.add_error("new_credential_name", "You already have a credential so named.")
                cleaned["new_credential"] = credential
        return cleaned


class KubeconfigImportForm(forms.Form):
    file = forms.FileField(required=False, label="Upload a kubeconfig")
    text = forms.CharField(
        required=False,
        label="…or paste it",
        widget=WriteOnlyTextarea(attrs={"rows": 10, "spellcheck": "false", "autocomplete": "off"}),
    )
    environments = forms.ModelMultipleChoiceField(
        queryset=Environment.objects.none(), required=False
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environments"].queryset = Environment.objects.restrict(user, "change")

    def clean(self):
        cleaned = super().clean()
        upload, text = cleaned.get("file"), cleaned.get("text", "")
        if upload:
            if upload.size > MAX_KUBECONFIG_BYTES:
                raise ValidationError("The file is larger than 512 KiB; is it a kubeconfig?")
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError("The file is not UTF-8 text; is it a kubeconfig?") from None
        if not text.strip():
            raise ValidationError("Upload a kubeconfig or paste one.")
        cleaned["document"] = parse_kubeconfig(text)
        return cleaned


class BulkActionForm(forms.Form):
    """An action on selected rows (``ids``) or on every row matching the table's filters."""

    action = forms.CharField()
    ids = forms.CharField(required=False)
    all_matching = forms.BooleanField(required=False)
    reason = forms.CharField(required=False, max_length=500)

    def clean_action(self):
        action = self.cleaned_data["action"]
        verb, _, value = action.partition(":")
        if verb == "transition" and (value in Status.values or value == "resume"):
            return verb, value
        if verb in ("assign", "unassign") and re.fullmatch(r"[0-9]{1,9}", value):
            return verb, int(value)
        raise ValidationError(f"Unknown action '{action}'.")

    def clean_ids(self):
        raw = self.cleaned_data.get("ids", "")
        try:
            return [int(part) for part in raw.replace(",", " ").split()]
        except ValueError:
            raise ValidationError("The selection is not a list of ids.") from None

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_matching") and not cleaned.get("ids"):
            raise ValidationError("Select at least one connection.")
        return cleaned


class CredentialForm(forms.ModelForm):
    """The secret is write-only: never shown, and left blank on edit it keeps the stored one."""

    username = forms.CharField(required=False, help_text="Basic auth only.")
    secret = forms.CharField(
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Token, password, API key or kubeconfig. Never shown again; leave blank to "
        "keep the stored secret.",
    )

    class Meta:
        model = Credential
        fields = ("name", "kind")

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def credential_owner(self):
        return self.owner or self.instance.owner

    def clean(self):
        cleaned = super().clean()
        kind, secret = cleaned.get("kind"), cleaned.get("secret", "")
        owner, name = self.credential_owner(), cleaned.get("name")
        if owner is not None and name:
            twins = Credential.objects.filter(owner=owner, name=name).exclude(pk=self.instance.pk)
            if twins.exists():
                self.add_error("name", "There is already a credential so named.")
        if not kind:
            return cleaned
        if not secret:
            if not self.instance.has_secret or kind != self.instance.kind:
                self.add_error("secret", "Enter the secret for this kind of credential.")
            return cleaned
        try:
            self.instance.kind = kind
            self.instance.set_secret(
                secret_values(kind, secret=secret, username=cleaned.get("username", ""))
            )
        except ValidationError as exc:
            self.add_error("secret", exc)
        return cleaned
