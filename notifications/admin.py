"""The notifications admin: the same rules as the pages and the API (``notifications.channels``).

A channel's destination is write-only (a form field that is never filled in; the stored config
is never shown, ``destination_hint`` is); making and changing a channel goes through
``create_channel``/``update_channel``, a rule through ``save_rule``. Querysets follow
``Channel.objects.restrict``; only those who may manage a channel change it or its rules.
Messages, deliveries and events are read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from connections.kinds import kind_choices
from connections.models import Connection
from core.forms import attach_errors
from environments.models import Environment

from . import channels
from .choices import Category
from .models import Channel, Delivery, Event, Message, Rule

_KNOBS = ("group_window", "group_threshold", "cooldown", "remind_every_hours", "rate_per_hour")


class ChannelAdminForm(forms.ModelForm):
    destination = forms.CharField(
        required=False,
        strip=False,
        max_length=20_100,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 80}),
        help_text="webhook: an http(s) URL; email: addresses, comma-separated; apprise: Apprise "
        "URLs, space-separated. Stored encrypted, never shown. On a change, blank keeps it.",
    )
    acting_user = None

    class Meta:
        model = Channel
        fields = ("name", "kind", "environment", "destination", "enabled", *_KNOBS)

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or (self.instance.kind if self.instance.pk else None)
        destination = data.get("destination") or ""
        if not self.instance.pk and not destination.strip():
            self.add_error("destination", "Give a destination.")
        elif destination.strip() and kind:
            try:
                channels.clean_destination(kind, destination)
            except ValidationError as exc:
                attach_errors(exc, self)
        if "environment" in self.changed_data or not self.instance.pk:
            try:
                channels.check_environment(self.acting_user, data.get("environment"))
            except ValidationError as exc:
                attach_errors(exc, self)
        return data


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = (
        "name",
        "kind",
        "owner",
        "environment",
        "destination_hint",
        "enabled",
        "failing",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    list_select_related = ("owner", "environment")
    readonly_fields = (
        "owner",
        "destination_hint",
        "consecutive_failures",
        "failing_since",
        "last_delivery_at",
        "created_at",
    )

    def get_queryset(self, request):
        return Channel.objects.restrict(request.user).select_related("owner", "environment")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("kind", *self.readonly_fields)  # a channel's kind never changes

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "environment":
            kwargs["queryset"] = channels.manageable_environments(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not channels.can_manage(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not channels.can_manage(request.user, obj):
            return False
        return super().has_delete_permission(request, obj)

    @method_decorator(sensitive_post_parameters("destination"))
    def changeform_view(self, request, *args, **kwargs):
        return super().changeform_view(request, *args, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        destination = data.get("destination") or None
        if change:
            fields = {
                name: data[name]
                for name in ("name", "environment", "enabled", *_KNOBS)
                if name in form.changed_data
            }
            channels.update_channel(request.user, obj, destination=destination, **fields)
            return
        channel, secret = channels.create_channel(
            request.user,
            name=data["name"],
            kind=data["kind"],
            destination=destination or "",
            environment=data.get("environment"),
            enabled=data.get("enabled", True),
            **{name: data[name] for name in _KNOBS if data.get(name) is not None},
        )
        obj.pk = channel.pk
        obj.refresh_from_db()
        if secret:
            # never put into a message (kept in the session or a cookie): rotate to see one
            self.message_user(
                request,
                "A signing secret was made for this webhook. It is not shown here: rotate it on "
                "the channel's page or with POST /api/notifications/channels/"
                f"{channel.pk}/rotate-secret/ to get one to configure the receiver.",
                messages.INFO,
            )

    @admin.display(boolean=True, description="Failing")
    def failing(self, obj: Channel) -> bool:
        return obj.failing


class RuleAdminForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=kind_choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    categories = forms.MultipleChoiceField(
        choices=Category.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None: the defaults (failures and recoveries).",
    )
    acting_user = None

    class Meta:
        model = Rule
        fields = ("channel", "environments", "connections", "kinds", "categories")

    class _DryRun(Exception):
        pass

    def clean(self):
        """``save_rule`` decides, in a transaction rolled back: the admin's own save comes later."""
        data = super().clean()
        if self.errors or data.get("channel") is None:
            return data
        try:
            with transaction.atomic():
                channels.save_rule(
                    self.acting_user,
                    data["channel"],
                    Rule(pk=self.instance.pk, channel=data["channel"]),
                    **_rule_values(data),
                )
                raise self._DryRun
        except self._DryRun:
            pass
        except ValidationError as exc:
            attach_errors(exc, self)
        return data


def _rule_values(data: dict) -> dict:
    return {
        "environments": list(data.get("environments") or []),
        "connections": list(data.get("connections") or []),
        "kinds": list(data.get("kinds") or []),
        "categories": list(data.get("categories") or []),
    }


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleAdminForm
    list_display = ("__str__", "channel", "categories", "kinds")
    list_select_related = ("channel",)
    filter_horizontal = ("environments", "connections")

    def get_queryset(self, request):
        return Rule.objects.filter(
            channel__in=Channel.objects.restrict(request.user)
        ).select_related("channel")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "channel":
            kwargs["queryset"] = Channel.objects.restrict(request.user, "change")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "environments":
            kwargs["queryset"] = Environment.objects.restrict(request.user)
        elif db_field.name == "connections":
            kwargs["queryset"] = Connection.objects.restrict(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not channels.can_manage(request.user, obj.channel):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not channels.can_manage(request.user, obj.channel):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        channels.save_rule(request.user, obj.channel, obj, **_rule_values(form.cleaned_data))

    def save_related(self, request, form, formsets, change):
        """``save_rule`` has set the rule's environments and connections."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "connection", "from_status", "to_status", "category", "trigger")
    list_filter = ("category", "trigger", "to_status")
    search_fields = ("connection__name", "reason")
    list_select_related = ("connection",)
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        visible = Connection.all_objects.restrict(request.user)
        return Event.objects.filter(connection__in=visible).select_related("connection", "user")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "channel", "kind", "title", "status", "attempts", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("title", "key")
    list_select_related = ("channel",)
    exclude = ("events",)  # the payload lists them, limited to what the channel may hear

    def get_queryset(self, request):
        return Message.objects.filter(
            channel__in=Channel.objects.restrict(request.user)
        ).select_related("channel", "connection")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("attempted_at", "channel", "message", "attempt", "ok", "status_code")
    list_filter = ("ok",)
    list_select_related = ("channel", "message")

    def get_queryset(self, request):
        return Delivery.objects.filter(
            channel__in=Channel.objects.restrict(request.user)
        ).select_related("channel", "message")
