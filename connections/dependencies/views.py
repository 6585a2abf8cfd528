"""The connection page's "Depends on" form: add or remove a parent (POST only)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.ids import parse_id

from ..models import Connection
from . import add_parent, remove_parent


@login_required
@require_POST
def connection_parents(request: HttpRequest, pk: int) -> HttpResponse:
    from ..ui import _done

    child = get_object_or_404(Connection.objects.restrict(request.user), pk=pk)
    fallback = reverse("connections:detail", args=[pk])
    parent_id = parse_id(request.POST.get("parent", ""))
    if parent_id is None:
        messages.error(request, "Choose the connection it depends on.")
        return _done(request, fallback, 400)
    parent = Connection.objects.restrict(request.user).filter(pk=parent_id).first()
    if parent is None:
        messages.error(request, "Choose a connection you can see.")
        return _done(request, fallback, 400)
    try:
        if request.POST.get("action") == "remove":
            remove_parent(request.user, child, parent)
            messages.success(request, f"'{child.name}' no longer depends on '{parent.name}'.")
        else:
            add_parent(request.user, child, parent)
            messages.success(request, f"'{child.name}' now depends on '{parent.name}'.")
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return _done(request, fallback, 403)
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
        return _done(request, fallback, 400)
    return _done(request, fallback)
