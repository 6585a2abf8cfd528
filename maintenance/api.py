"""The maintenance windows API: /api/maintenance/windows/.

The same visibility rule as the pages: a caller sees the windows of
``Window.objects.restrict(user)`` and changes those of ``restrict(user, "change")``; a window
they cannot see is a 404 (its existence is not revealed), one they see but may not change a
403. Making and changing windows goes through ``maintenance.windows`` (the one rule the pages
use too). Every answer carries ``next_occurrences`` in UTC."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.api import invalid
from core.ids import ID_PATTERN

from . import serializers as s
from . import windows
from .models import Window


class WindowPages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _manage(user, window: Window) -> None:
    if not windows.can_manage(user, window):
        raise PermissionDenied(f"You may view the window '{window.name}' but not change it.")


class WindowViewSet(viewsets.ModelViewSet):
    """Maintenance windows: the caller's own and those of environments they may see. One-off
    (`starts_at`, `ends_at`) or recurring (`weekdays`, `start_time`, `duration_minutes`), in an
    IANA `timezone`; they cover `connections`, `environments` (their members now and later) and
    `kinds`. While one is active its registered/connected connections are in maintenance."""

    serializer_class = s.WindowSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = WindowPages
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return (
            Window.objects.restrict(self.request.user)
            .select_related("owner", "environment")
            .prefetch_related("connections", "environments")
            .order_by("name", "pk")
        )

    def _answer(self, window: Window, code: int = 200) -> Response:
        fresh = self.get_queryset().get(pk=window.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def create(self, request, *args, **kwargs):
        """Make a window (of the caller's own, or of an environment they own or edit)."""
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        values.setdefault("environment", None)
        try:
            window = windows.save_window(request.user, Window(), **values)
        except DjangoValidationError as exc:
            raise invalid(exc) from None
        return self._answer(window, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        """Change a window (its owner, or an editor of its environment). Absent scopes are
        kept; a new schedule forgets an earlier end-now."""
        window = self.get_object()
        _manage(request.user, window)  # before any validation: a viewer learns nothing more
        body = self.get_serializer(window, data=request.data, partial=kwargs.get("partial"))
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        values.pop("environment", None)  # the same one (the serializer refused another)
        try:
            windows.save_window(request.user, window, **values)
        except DjangoValidationError as exc:
            raise invalid(exc) from None
        return self._answer(window)

    def destroy(self, request, *args, **kwargs):
        window = self.get_object()
        _manage(request.user, window)
        windows.delete_window(request.user, window)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: s.WindowSerializer})
    @action(detail=True, methods=["post"], url_path="end-now")
    def end_now(self, request, pk=None):
        """End the current occurrence now (400 if none is under way): the next run of the
        maintenance task (every few seconds) takes its connections out and probes them. Later
        occurrences of a recurring window still happen: disable it to stop them."""
        window = self.get_object()
        _manage(request.user, window)
        try:
            windows.end_now(request.user, window)
        except DjangoValidationError as exc:
            raise invalid(exc) from None
        return self._answer(window)


routes = [("maintenance/windows", WindowViewSet, "maintenance-window")]
