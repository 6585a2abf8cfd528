"""The window form: it parses what was typed; ``windows`` decides what is allowed.

A one-off window's start and end are typed as wall-clock times in the window's own timezone
(the field below them); errors raised by ``windows`` are put on the field they name."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.core.exceptions import ValidationError

from connections.kinds import kind_choices
from connections.models import Connection
from connections.picking.widgets import PickerSelectMultiple
from core import times
from environments.models import Environment

from . import windows
from .models import MAX_DURATION_MINUTES, Window, validate_timezone

WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]
LOCAL_INPUT = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def timezone_names() -> list[str]:
    return sorted(available_timezones())


class LocalDateTimeField(forms.DateTimeField):
    """A wall-clock time, kept naive here: the form makes it aware in the window's zone."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, **kwargs: Any):
        super().__init__(input_formats=LOCAL_INPUT, **kwargs)

    def to_python(self, value: Any) -> datetime | None:
        if isinstance(value, str) and value.strip():
            for fmt in LOCAL_INPUT:
                try:
                    return datetime.strptime(value.strip(), fmt)
                except ValueError:
                    continue
            raise ValidationError("Enter a date and time (YYYY-MM-DD HH:MM).", code="invalid")
        return None


class WindowForm(forms.Form):
    name = forms.CharField(max_length=200)
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.none(),
        required=False,
        empty_label="none: my own window",
        help_text="An environment's window is managed by its owner and editors and covers only "
        "that environment.",
    )
    kind = forms.ChoiceField(choices=Window.Kind.choices, widget=forms.RadioSelect)
    starts_at = LocalDateTimeField(label="Starts (one-off)", required=False)
    ends_at = LocalDateTimeField(label="Ends (one-off)", required=False)
    weekdays = forms.TypedMultipleChoiceField(
        label="Weekdays (recurring)",
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The days an occurrence starts on (it may run past midnight).",
    )
    start_time = forms.TimeField(
        label="Start time (recurring)",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    duration_minutes = forms.IntegerField(
        label="Duration in minutes (recurring)",
        required=False,
        min_value=1,
        max_value=MAX_DURATION_MINUTES,
    )
    timezone = forms.CharField(
        max_length=64,
        initial="UTC",
        validators=[validate_timezone],
        widget=forms.TextInput(attrs={"list": "timezones", "autocomplete": "off"}),
        help_text="An IANA timezone, e.g. Europe/Amsterdam: times above are read in it.",
    )
    # chosen by name in a searchable picker (templates/maintenance/form.html); the queryset
    # set below is what the form accepts, whatever the picker was made to send
    connections = forms.ModelMultipleChoiceField(
        queryset=Connection.objects.none(),
        required=False,
        widget=PickerSelectMultiple(
            attrs={"size": 8, "aria-label": "Connections: the chosen ones, then those found"}
        ),
    )
    environments = forms.ModelMultipleChoiceField(
        queryset=Environment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Their connections, now and later.",
    )
    kinds = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Connections of these kinds (inside the window's environment).",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, user: Any, window: Window | None = None, **kwargs: Any):
        if window is not None:
            own = window.zone
            initial = {name: getattr(window, name) for name in windows.EDITABLE}
            for name in ("starts_at", "ends_at"):
                if initial[name] is not None:
                    initial[name] = initial[name].astimezone(own).replace(tzinfo=None)
            initial["connections"] = list(window.connections.all())
            initial["environments"] = list(window.environments.all())
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.window = window
        environment = window.environment if window is not None else None
        # the environment the connection picker searches in (a new window's is its field's)
        self.within = environment.pk if environment is not None else None
        if window is None:
            self.fields["environment"].queryset = windows.manageable_environments(user).order_by(
                "name", "pk"
            )
            # the scope lists offer everything a window of one's own or of any manageable
            # environment may name; ``windows`` checks the pair
            self.fields["connections"].queryset = windows.scope_connections(user)
            self.fields["environments"].queryset = windows.scope_environments(user)
        else:
            del self.fields["environment"]
            self.fields["connections"].queryset = windows.scope_connections(user, environment)
            self.fields["environments"].queryset = windows.scope_environments(user, environment)
        self.fields["kinds"].choices = kind_choices()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        name = data.get("timezone")
        if name:
            tz = ZoneInfo(name)
            for field in ("starts_at", "ends_at"):
                value = data.get(field)
                if isinstance(value, datetime) and value.tzinfo is None:
                    data[field] = value.replace(tzinfo=tz)
                    problem = times.time_problem(data[field])
                    if problem:
                        self.add_error(field, problem)
        else:
            for field in ("starts_at", "ends_at"):
                data.pop(field, None)
        return data

    def window_fields(self) -> dict[str, Any]:
        """The keyword arguments of ``windows.save_window``."""
        data = self.cleaned_data
        fields = {name: data.get(name) for name in windows.EDITABLE}
        fields["weekdays"] = list(data.get("weekdays") or [])
        fields["kinds"] = list(data.get("kinds") or [])
        fields["connections"] = list(data.get("connections") or [])
        fields["environments"] = list(data.get("environments") or [])
        if self.window is None:
            fields["environment"] = data.get("environment")
        return fields
