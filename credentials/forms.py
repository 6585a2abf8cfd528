"""The credential form: the secret is write-only, the endpoints are the owner's to set."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .bounds import parse_endpoints
from .models import Credential
from .secrets import WriteOnlyTextarea, secret_values


class CredentialForm(forms.ModelForm):
    """Left blank on edit, the secret box keeps the stored secret (unless the kind changes)."""

    username = forms.CharField(required=False, help_text="Basic auth only.")
    secret = forms.CharField(
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Token, password, API key or kubeconfig. Stored encrypted and never shown again.",
    )
    endpoints_text = forms.CharField(
        label="Endpoints",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Where this secret may be sent: one scheme://host[:port] per line, e.g. "
        "https://grafana.prod:3000. Nothing sends it anywhere else. A kubeconfig is bound to "
        "its clusters' servers.",
    )

    class Meta:
        model = Credential
        fields = ("name", "kind", "allow_insecure_tls")

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        if self.instance.pk and not self.is_bound:
            self.initial["endpoints_text"] = "\n".join(self.instance.endpoints or [])
        if self.instance.pk:
            self.fields["secret"].help_text += " Leave blank to keep the stored secret."

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
        try:
            endpoints = parse_endpoints(cleaned.get("endpoints_text", ""))
        except ValidationError as exc:
            self.add_error("endpoints_text", exc)
            endpoints = None
        if not kind:
            return cleaned
        self.instance.kind = kind
        self.instance.allow_insecure_tls = bool(cleaned.get("allow_insecure_tls"))
        if endpoints is not None and kind != Credential.Kind.KUBECONFIG:
            self.instance.endpoints = endpoints
        if not secret:
            if not self.instance.has_secret or kind != self.initial.get("kind", kind):
                self.add_error("secret", "Enter the secret for this kind of credential.")
            elif kind == Credential.Kind.KUBECONFIG and "allow_insecure_tls" in self.changed_data:
                self.add_error("secret", "Enter the kubeconfig again to change its TLS opt-in.")
            return cleaned
        try:
            self.instance.set_secret(
                secret_values(kind, secret=secret, username=cleaned.get("username", ""))
            )
        except ValidationError as exc:
            self.add_error("secret", exc)
        return cleaned
