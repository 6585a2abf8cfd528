"""Forms of the connection pages; every choice list is restricted to what the user may use."""

from __future__ import annotations

import contextlib

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from core.ids import IdModelMultipleChoiceField, parse_id
from core.text import validate_name
from credentials.bounds import origin_of
from credentials.kubeconfig import MAX_KUBECONFIG_BYTES, parse_kubeconfig
from credentials.models import Credential
from credentials.secrets import WriteOnlyTextarea, secret_values
from environments.models import Environment

from . import editing
from .choices import Status, quorum_choices
from .identity import validate_endpoint_url
from .kinds import kind_choices
from .models import Connection, Location
from .tagging import MAX_TAGS_TEXT, clean_tag, clean_tags


def model_bounds(name: str, **kwargs) -> forms.IntegerField:
    """A form field for an integer of ``Connection`` with the model's own bounds (its
    validators): the pages, the API and the admin then refuse the same numbers."""
    field = Connection._meta.get_field(name)
    low = max(v.limit_value for v in field.validators if isinstance(v, MinValueValidator))
    high = min(v.limit_value for v in field.validators if isinstance(v, MaxValueValidator))
    kwargs.setdefault("initial", field.default)
    return forms.IntegerField(min_value=low, max_value=high, **kwargs)


class EndpointUrlMixin:
    """The URL's rule is the model's (``identity.validate_endpoint_url``); a form only adds that
    a URL with a typed password in it is never sent back in the page."""

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            validate_endpoint_url(url)
        except ValidationError as exc:
            if exc.code == "userinfo_in_url":
                self.data = self.data.copy()
                self.data["url"] = ""  # never send a typed password back in the page
                raise
        # other problems: the model's validator names them with the rest of the rules
        return url


class AddConnectionForm(EndpointUrlMixin, forms.Form):
    kind = forms.ChoiceField(choices=kind_choices)
    name = forms.CharField(max_length=200, validators=[validate_name])
    url = forms.CharField(label="URL", max_length=500, help_text="http:// or https://")
    credential = forms.ModelChoiceField(
        queryset=Credential.objects.none(), required=False, empty_label="(none)"
    )
    new_credential_kind = forms.ChoiceField(
        label="…or a new credential",
        choices=[("", "(none)"), *Credential.Kind.choices],
        required=False,
    )
    new_credential_name = forms.CharField(
        max_length=200, required=False, label="Its name", validators=[validate_name]
    )
    new_credential_username = forms.CharField(
        max_length=200, required=False, label="Username (basic auth)"
    )
    new_credential_secret = forms.CharField(
        required=False,
        label="Secret",
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Token, password, API key or kubeconfig; stored encrypted, never shown again.",
    )
    environments = IdModelMultipleChoiceField(queryset=Environment.objects.none(), required=False)
    failure_threshold = model_bounds("failure_threshold", label="Failure threshold")
    probe_interval = model_bounds(
        "probe_interval", initial=settings.PROBE_INTERVAL, label="Probe every (s)"
    )
    retry_interval = model_bounds(
        "retry_interval",
        initial=settings.PROBE_RETRY_INTERVAL,
        required=False,
        label="Retry after a failure (s)",
        help_text="Until the threshold is reached, so an outage is confirmed in seconds.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["credential"].queryset = Credential.objects.restrict(user, "use")
        self.fields["environments"].queryset = Environment.objects.restrict(user, "change")

    def clean(self):
        cleaned = super().clean()
        new_kind = cleaned.get("new_credential_kind")
        if new_kind and cleaned.get("credential"):
            raise ValidationError("Choose an existing credential or create a new one, not both.")
        if new_kind:
            name = cleaned.get("new_credential_name") or f"{cleaned.get('name', 'connection')}"
            credential = Credential(name=name, kind=new_kind, owner=self.user)
            # a credential made for this connection may be sent to its endpoint (a bad URL:
            # the URL's own error says why)
            with contextlib.suppress(ValueError):
                credential.endpoints = [origin_of(cleaned.get("url") or "")]
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
    # Never sent back (it holds tokens and keys): after an error the page keeps what was pasted
    # in the browser instead, since the form posts with htmx and the box is hx-preserve'd
    # (connections/import.html). Without JavaScript the box comes back empty.
    text = forms.CharField(
        required=False,
        label="…or paste it",
        widget=WriteOnlyTextarea(
            attrs={
                "rows": 10,
                "spellcheck": "false",
                "autocomplete": "off",
                "hx-preserve": "true",
                "data-empty-after-success": "",  # app.js: emptied once imported
            }
        ),
    )
    environments = IdModelMultipleChoiceField(queryset=Environment.objects.none(), required=False)
    allow_insecure_tls = forms.BooleanField(
        required=False,
        label="Allow clusters that skip TLS verification",
        help_text="Only for clusters whose kubeconfig sets insecure-skip-tls-verify: their "
        "server's identity is not checked, so anyone on the path could read the token.",
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
        cleaned["document"] = parse_kubeconfig(
            text, allow_insecure_tls=bool(cleaned.get("allow_insecure_tls"))
        )
        return cleaned


class EditConnectionForm(EndpointUrlMixin, forms.Form):
    """A connection's editable settings. The rules are ``editing.update_connection``'s (those of
    the add form and the API); ``version`` is the signed snapshot of what the page showed."""

    name = forms.CharField(max_length=200, validators=[validate_name])
    url = forms.CharField(label="URL", max_length=500, help_text="http:// or https://")
    credential = forms.ModelChoiceField(
        queryset=Credential.objects.none(), required=False, empty_label="(none)"
    )
    environments = IdModelMultipleChoiceField(
        queryset=Environment.objects.none(),
        required=False,
        help_text="Only the environments you may change are listed; its memberships in others "
        "stay as they are.",
    )
    failure_threshold = model_bounds("failure_threshold", label="Failure threshold")
    probe_interval = model_bounds("probe_interval", label="Probe every (s)")
    retry_interval = model_bounds(
        "retry_interval",
        label="Retry after a failure (s)",
        help_text="Until the threshold is reached, so an outage is confirmed in seconds.",
    )
    tags = forms.CharField(
        required=False,
        max_length=MAX_TAGS_TEXT,
        help_text="Separated by commas or spaces, e.g. team=payments, prod, eu-west.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    # Where it is probed from: shown only once a location exists (docs/locations.md)
    locations = IdModelMultipleChoiceField(
        queryset=Location.objects.none(),
        required=False,
        label="Probed from",
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: the default locations of its environments, or every location "
        "when they have none.",
    )
    quorum = forms.ChoiceField(
        required=False,
        label="Quorum",
        help_text="How many of the locations that answered must fail for a probe round to "
        "fail. A majority (the default) needs at least 2 answers when it has 2 or more "
        "locations; fewer locations failing is a partial outage, shown but no change of state.",
        error_messages={"invalid_choice": "Choose a quorum from the list."},
    )
    # the tags the page showed: a save adds and removes only what the user changed
    tags_shown = forms.CharField(widget=forms.HiddenInput, required=False, max_length=MAX_TAGS_TEXT)
    version = forms.CharField(widget=forms.HiddenInput, max_length=4000)
    # the environments ticked when the page was shown: a save applies only what the user
    # ticked or unticked since, so a membership changed elsewhere meanwhile is not undone
    environments_shown = forms.CharField(widget=forms.HiddenInput, required=False, max_length=4000)

    def __init__(self, *args, connection: Connection, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.connection = connection
        # what the user may attach, and the credential attached now (kept without a check:
        # the rules ask for one only when the URL or the credential changes)
        usable = Credential.objects.restrict(user, "use")
        if connection.credential_id:
            usable = usable | Credential.objects.filter(pk=connection.credential_id)
        self.fields["credential"].queryset = usable.distinct().order_by("name", "pk")
        self.fields["environments"].queryset = Environment.objects.restrict(
            user, "change"
        ).order_by("name", "pk")
        self._offer_locations(connection)

    def _offer_locations(self, connection: Connection) -> None:
        """Offer "Probed from" and "Quorum" once a location exists; without one the page is as
        it was. A page posted without them (shown before the first location was added) changes
        neither: its select always sends a quorum, so no quorum sent means not shown."""
        count = Location.objects.count()
        if not count or (self.is_bound and "quorum" not in self.data):
            del self.fields["locations"], self.fields["quorum"]
            return
        self.fields["locations"].queryset = Location.objects.order_by("name")
        self.fields["quorum"].choices = quorum_choices(count, connection.quorum)

    @property
    def offers_locations(self) -> bool:
        return "quorum" in self.fields

    def clean_environments_shown(self) -> set[int]:
        ids = {parse_id(part) for part in self.cleaned_data.get("environments_shown", "").split()}
        if None in ids:
            raise ValidationError(
                "This form is damaged: reload the page and edit again.", code="bad_shown"
            )
        return ids

    def clean_tags(self) -> list[str]:
        return clean_tags(self.cleaned_data.get("tags", ""))

    def clean_tags_shown(self) -> list[str]:
        try:
            return clean_tags(self.cleaned_data.get("tags_shown", ""))
        except ValidationError:
            raise ValidationError("The page's tags are not valid: reload it.") from None

    def clean_version(self):
        seen = editing.read_snapshot(self.cleaned_data["version"])
        if seen is None:
            raise ValidationError(
                "This form is damaged or out of date: reload the page and edit again.",
                code="bad_version",
            )
        return seen


class BulkActionForm(forms.Form):
    """An action on selected rows (``ids``) or on every row matching the table's filters."""

    action = forms.CharField()
    ids = forms.CharField(required=False)
    all_matching = forms.BooleanField(required=False)
    reason = forms.CharField(required=False, max_length=500)
    tag = forms.CharField(required=False, max_length=200, strip=True)

    def clean_action(self):
        action = self.cleaned_data["action"]
        verb, _, value = action.partition(":")
        if verb == "transition" and (value in Status.values or value == "resume"):
            return verb, value
        environment = parse_id(value)
        if verb in ("assign", "unassign") and environment is not None:
            return verb, environment
        if verb == "tag" and value in ("add", "remove"):
            return verb, value
        raise ValidationError(f"Unknown action '{action}'.")

    def clean_ids(self):
        parts = self.cleaned_data.get("ids", "").replace(",", " ").split()
        if not all(part.isascii() and part.isdigit() for part in parts):
            raise ValidationError("The selection is not a list of ids.")
        ids = [parse_id(part) for part in parts]
        if None in ids:
            raise ValidationError("The selection names an id that cannot exist.")
        return ids

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_matching") and not cleaned.get("ids"):
            raise ValidationError("Select at least one connection.")
        if cleaned.get("action", ("",))[0] == "tag":
            if not cleaned.get("tag"):
                raise ValidationError("Type the tag to add or remove.")
            try:
                cleaned["tag"] = clean_tag(cleaned["tag"])
            except ValidationError as exc:
                self.add_error("tag", exc)
        return cleaned
