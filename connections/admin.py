"""Admin: status is read-only and changes only through the allowed transitions' buttons.

Buttons come from django-fsm-2's ``FSMAdminMixin`` (the user edges open from the current state,
permission-checked); pressing one goes through ``lifecycle.perform_user_action`` like every other
front end, so it is compare-and-set, recorded, and Register runs the reachability check.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils.html import format_html, format_html_join
from django_fsm.admin import FSMAdminMixin

from core import access
from credentials.models import Credential

from . import creating, lifecycle
from .choices import STATUS_STYLE, Status
from .editing import validate_connection
from .models import Connection, ConnectionTransition


def status_badge(status: str, label: str):
    """The state badge; its colours (light and dark, as the admin's theme) are in admin.css."""
    icon = STATUS_STYLE[status][2]
    return format_html(
        '<span class="status-badge state-{0}"><span aria-hidden="true">{1}</span> {2}</span>',
        status,
        icon,
        label,
    )


class StatusFilter(admin.SimpleListFilter):
    """Deleted connections are tombstones: listed only when asked for."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Status.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(status=self.value())
        return queryset.live()


class ConnectionAdminForm(forms.ModelForm):
    """Runs the rules every entry point runs (``editing.validate_connection``) for the user
    at the admin, so the admin can neither attach a credential outside its bounds nor move a
    connection out of them."""

    acting_user = None

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        previous = Connection.all_objects.filter(pk=self.instance.pk).first()
        try:
            validate_connection(self.instance, user=self.acting_user, previous=previous)
        except ValidationError as exc:
            self._update_errors(exc)


class ConnectionAddForm(ConnectionAdminForm):
    class Meta:
        model = Connection
        fields = (
            "name",
            "kind",
            "url",
            "credential",
            "failure_threshold",
            "probe_interval",
            "retry_interval",
            "metadata",
        )


@admin.register(Connection)
class ConnectionAdmin(FSMAdminMixin, admin.ModelAdmin):
    fsm_fields = ["status"]
    list_display = ("name", "kind", "url", "badge", "managed", "owner", "last_probe_at")
    list_filter = (StatusFilter, "kind", "managed")
    search_fields = ("name", "url")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner", "credential")
    readonly_fields = (
        "status",
        "identity",
        "managed",
        "resume_status",
        "status_changed_at",
        "consecutive_failures",
        "next_probe_at",
        "last_probe_at",
        "last_probe_ok",
        "last_probe_error",
        "last_latency_ms",
        "created_at",
        "updated_at",
        "timeline",
    )

    def get_queryset(self, request):
        return Connection.all_objects.restrict(request.user).select_related("owner")

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not access.may(request.user, obj, access.CHANGE):
            return False
        return super().has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "credential":
            # only credentials this user may attach: their own, and those shared with them
            # as an editor (the bounds are checked by the form)
            kwargs["queryset"] = Credential.objects.restrict(request.user, "use")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    form = ConnectionAdminForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ConnectionAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    @admin.display(description="State timeline")
    def timeline(self, obj: Connection):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    row.get_from_status_display() or "(new)",
                    row.get_to_status_display(),
                    row.get_trigger_display(),
                    row.user or "",
                    row.reason,
                )
                for row in obj.history.select_related("user").order_by("-created_at", "-pk")[:50]
            ),
        )
        return format_html(
            "<table><thead><tr><th>time</th><th>from</th><th>to</th><th>trigger</th>"
            "<th>user</th><th>reason</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Status", ordering="status")
    def badge(self, obj: Connection):
        return status_badge(obj.status, obj.get_status_display())

    def fsm_transition_view(self, request, object_id, transition_name, **kwargs):
        """django-fsm-2's page for transitions with a form: none of ours has one (they are
        buttons on the change page, through lifecycle), so every name is not found."""
        raise Http404("No such transition page.")

    def get_fsm_label(self, transition) -> str:
        label = transition.custom.get("label") or transition.name
        return label

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # Adding by hand is the user's "Add connection": the reachability check decides the state.
        created = creating.create_manual_connection(
            name=obj.name,
            kind=obj.kind,
            url=obj.url,
            user=request.user,
            credential=obj.credential,
            metadata=obj.metadata,
            failure_threshold=obj.failure_threshold,
            probe_interval=obj.probe_interval,
            retry_interval=obj.retry_interval,
        )
        obj.pk = created.connection.pk
        obj.refresh_from_db()
        if created.outcome.ok:
            self.message_user(request, f"'{obj}' is reachable: registered.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"'{obj}' could not be reached: {created.outcome.said(obj.url)} Not found.",
                messages.WARNING,
            )

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None) -> bool:
        targets = {
            item.name: target
            for target, item in lifecycle.available(obj, user=request.user).items()
            if self.is_fsm_transition_visible(item)
        }
        target = targets.get(transition_name)
        try:
            if target is None:
                raise lifecycle.refusal(obj, transition_name, "user")
            record = lifecycle.perform_user_action(obj, target, user=request.user)
        except (
            lifecycle.TransitionRefused,
            lifecycle.RegistrationFailed,
            PermissionDenied,
        ) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return False
        self.message_user(
            request,
            f"'{obj}' is now {record.get_to_status_display()}.",
            messages.SUCCESS,
        )
        return True


@admin.register(ConnectionTransition)
class ConnectionTransitionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "connection", "from_status", "to_status", "trigger", "user")
    list_filter = ("trigger", "to_status", "from_status")
    search_fields = ("connection__name", "reason")
    list_select_related = ("connection", "user")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
