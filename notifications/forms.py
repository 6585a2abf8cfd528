"""Channel and rule forms: they parse what was typed; ``channels`` decides what is allowed.

The destination is write-only (never rendered back, not even after an error): on edit a blank
box keeps the stored one. Errors raised by ``channels`` are attached to the field they name.
"""

from __future__ import annotations

from typing import Any

from django import forms

from connections.kinds import kind_choices
from connections.models import Connection
from connections.picking.widgets import PickerSelectMultiple
from credentials.secrets import WriteOnlyTextarea
from environments.models import Environment

from .channels import manageable_environments
from .choices import DEFAULT_CATEGORIES, Category, ChannelKind
from .models import Channel

OPTIONS = {
    "group_window": "Group window (seconds)",
    "group_threshold": "Group threshold (changes)",
    "cooldown": "Cool-down (seconds)",
    "remind_every_hours": "Remind every (hours)",
    "rate_per_hour": "Rate limit (messages an hour)",
}
RULE_FIELDS = ("environments", "connections", "kinds", "categories")
DESTINATION_HELP = {
    "new": "Webhook: an https:// URL. Email: addresses, comma-separated. Apprise: one URL per "
    "line (slack://…, ntfy://…, discord://…). Stored encrypted and never shown again.",
    "edit": "Stored encrypted and never shown. Enter a new one to replace it, or leave the box "
    "blank to keep it.",
}


class ChannelForm(forms.Form):
    """A channel's settings. Kind and environment are fixed once it exists: another kind needs
    another destination, another environment other managers (make a new channel instead)."""

    name = Channel._meta.get_field("name").formfield()
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    destination = forms.CharField(
        required=False,
        max_length=20_000,
        widget=WriteOnlyTextarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
        help_text=DESTINATION_HELP["new"],
    )
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.none(),
        required=False,
        empty_label="none: my own channel",
        help_text="An environment's channel is managed by its owner and editors and hears of "
        "that environment's connections only.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, user: Any, channel: Channel | None = None, **kwargs: Any):
        if channel is not None:
            kwargs.setdefault(
                "initial",
                {field: getattr(channel, field) for field in ("name", "enabled", *OPTIONS)},
            )
        super().__init__(*args, **kwargs)
        self.channel = channel
        for name, label in OPTIONS.items():
            self.fields[name] = Channel._meta.get_field(name).formfield(label=label)
        if channel is None:
            self.fields["environment"].queryset = manageable_environments(user).order_by("name")
            self.fields["destination"].required = True
        else:
            del self.fields["kind"], self.fields["environment"]
            self.fields["destination"].help_text = DESTINATION_HELP["edit"]

    def channel_fields(self) -> dict[str, Any]:
        """The keyword arguments of ``channels.create_channel``/``update_channel``."""
        names = ["name", "enabled", *OPTIONS]
        if self.channel is None:
            names += ["kind", "environment"]
        fields = {name: self.cleaned_data[name] for name in names}
        fields["destination"] = self.cleaned_data["destination"]
        return fields


class RuleForm(forms.Form):
    """What a channel hears. Empty scopes mean every connection the channel may see."""

    environments = forms.ModelMultipleChoiceField(
        queryset=Environment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Connections in these environments, now and later.",
    )
    # chosen by name in a searchable picker (templates/notifications/_rule_fields.html); the
    # queryset set below is what the form accepts, whatever the picker was made to send
    connections = forms.ModelMultipleChoiceField(
        queryset=Connection.objects.none(),
        required=False,
        widget=PickerSelectMultiple(
            attrs={"size": 8, "aria-label": "Connections: the chosen ones, then those found"}
        ),
    )
    kinds = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Connections of these kinds (none ticked: any kind).",
    )
    categories = forms.MultipleChoiceField(
        label="Changes",
        choices=Category.choices,
        required=False,
        initial=list(DEFAULT_CATEGORIES),
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick nothing for the defaults (failures and recoveries).",
    )

    def __init__(self, *args: Any, user: Any, channel: Channel | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        environments = Environment.objects.restrict(user).order_by("name", "pk")
        connections = Connection.objects.restrict(user).order_by("name", "pk")
        # the environment the connection picker searches in (a new channel's is its field's)
        self.within = channel.environment_id if channel is not None else None
        if self.within is not None:
            environments = environments.filter(pk=self.within)
            connections = connections.filter(environments=self.within)
        self.fields["environments"].queryset = environments
        self.fields["connections"].queryset = connections
        self.fields["kinds"].choices = kind_choices()

    def rule_fields(self) -> dict[str, Any]:
        """The keyword arguments of ``channels.save_rule``."""
        return {name: list(self.cleaned_data[name]) for name in RULE_FIELDS}
