"""Credential pages: names and kinds only; a secret is written, replaced, never read back."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Prefetch, ProtectedError, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from environments.models import Environment

from .forms import CredentialForm
from .models import Credential

DELETED = "deleted"  # a deleted connection's tombstone does not use its credential


def visible_environments(user) -> Prefetch:
    """Only the environments the user may see: a credential's page never names the others."""
    return Prefetch(
        "environments", queryset=Environment.objects.restrict(user).order_by("name", "pk")
    )


def credentials_for(user):
    """The credentials a user sees, with how many live connections use each."""
    return (
        Credential.objects.restrict(user)
        .select_related("owner")
        .prefetch_related(visible_environments(user))
        .annotate(used_by=Count("connections", filter=~Q(connections__status=DELETED)))
        .order_by("name", "pk")
    )


@login_required
def credential_list(request: HttpRequest) -> HttpResponse:
    credentials = credentials_for(request.user)
    return render(request, "credentials/list.html", {"credentials": credentials})


def _owned(request: HttpRequest, pk: int) -> tuple[Credential, bool]:
    credential = get_object_or_404(Credential.objects.restrict(request.user), pk=pk)
    return credential, credential.is_owned_by(request.user)


@sensitive_post_parameters("secret")
@login_required
def credential_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    credential = None
    if pk is not None:
        credential, mine = _owned(request, pk)
        if not mine:
            messages.error(
                request, f"'{credential.name}' is shared with you: only its owner edits it."
            )
            return redirect("credentials:list")
    form = CredentialForm(
        request.POST or None,
        instance=credential,
        owner=credential.owner if credential else request.user,
    )
    if request.method == "POST":
        if form.is_valid():
            credential = form.save(commit=False)
            if credential.owner_id is None:
                credential.owner = request.user
            credential.save()
            messages.success(request, f"Credential '{credential.name}' saved (stored encrypted).")
            return redirect("credentials:list")
        # an edit stays an edit after an error: its title, and its "leave blank to keep" help
        return render(
            request,
            "credentials/form.html",
            {"form": form, "credential": _owned(request, pk)[0] if pk is not None else None},
            status=400,
        )
    return render(request, "credentials/form.html", {"form": form, "credential": credential})


@login_required
@require_POST
def credential_delete(request: HttpRequest, pk: int) -> HttpResponse:
    credential, mine = _owned(request, pk)
    if not mine:
        messages.error(
            request, f"'{credential.name}' is shared with you: only its owner deletes it."
        )
        return redirect("credentials:list")
    users = list(credential.connections.exclude(status=DELETED).values_list("name", flat=True))
    if users:
        messages.error(
            request,
            f"'{credential.name}' is in use by {len(users)} connection(s): {', '.join(users)}. "
            "Attach another credential to them, or delete them, first.",
        )
        return redirect("credentials:list")
    try:
        credential.delete()
    except ProtectedError:  # a row the count above did not see (added meanwhile)
        messages.error(request, f"'{credential.name}' is in use: it was not deleted.")
        return redirect("credentials:list")
    messages.success(request, f"Credential '{credential.name}' deleted.")
    return redirect("credentials:list")
