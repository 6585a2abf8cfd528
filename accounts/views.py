"""The profile page for API tokens: create (the key is shown once), list, revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.sanitize import clean_text

from .models import ApiToken


@login_required
def token_list(request):
    new_key = None
    if request.method == "POST":
        name = (request.POST.get("name") or "").strip()[:100]
        if not name:
            messages.error(request, "Give the token a name (what will use it?).")
        elif clean_text(name, 100) != name:
            messages.error(request, "The name contains a NUL or an invalid character.")
        else:
            try:
                _, new_key = ApiToken.issue(request.user, name)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
    tokens = ApiToken.objects.filter(user=request.user)
    response = render(request, "accounts/tokens.html", {"tokens": tokens, "new_key": new_key})
    response["Cache-Control"] = "no-store"  # the page that shows a key once is never cached
    return response


@login_required
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user, revoked_at__isnull=True)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("tokens")
