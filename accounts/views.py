"""The profile page for API tokens (create, the key shown once; list; revoke), the users page
of staff (invite, deactivate and reactivate, staff or not), and the invitee's pages."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe

from core.sanitize import clean_text
from core.text import one_line

from . import invitations, users
from .forms import InviteForm
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


# --- the users page (staff) -------------------------------------------------------------------

USERS_PER_PAGE = 50


def staff_only(view):
    """403 (the product's page) for anyone signed in who does not manage users."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not users.manages_users(request.user):
            raise PermissionDenied("Only staff manage users.")
        return view(request, *args, **kwargs)

    return wrapper


def _search_text(raw: str) -> str:
    return " ".join(one_line(clean_text(raw, 200)).split())[:100]


def _back_to_list(request: HttpRequest, status: int = 302) -> HttpResponse:
    """The users page, with the search the action was taken from."""
    url = reverse("users:list")
    query = _search_text(request.POST.get("q", ""))
    if query:
        url += "?" + urlencode({"q": query})
    return HttpResponseRedirect(url, status=status)


def _users_page(request: HttpRequest, status: int = 200) -> HttpResponse:
    query = _search_text(request.GET.get("q", ""))
    rows = users.search(
        get_user_model().objects.select_related("invitation").order_by("username", "pk"), query
    )
    page = Paginator(rows, USERS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    for row in page:
        row.offers = users.offers(request.user, row)
        invitation = getattr(row, "invitation", None)
        row.invitation_state = invitations.state(invitation, now) if invitation else None
        row.invitation_expires = invitations.expires_at(invitation) if invitation else None
    context = {"page": page, "query": query, "max_age": invitations.max_age_text()}
    response = render(request, "accounts/users.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_safe
@staff_only
def user_list(request: HttpRequest) -> HttpResponse:
    return _users_page(request)


@login_required
@staff_only
def user_invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invited, code = invitations.invite(
                request.user,
                email=data["email"],
                username=data["username"],
                first_name=data["first_name"],
                last_name=data["last_name"],
            )
        except IntegrityError:  # the same user name, invited at the same moment
            form.add_error("username", f"The user name '{data['username']}' is taken.")
        else:
            _sent(request, invited, code)
            return redirect("users:list")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/invite.html", {"form": form}, status=status)


def _sent(request: HttpRequest, user, code: str) -> None:
    name = user.get_username()
    if invitations.send(request, user, code):
        messages.success(
            request,
            f"Invitation sent to {user.email}: its link lets '{name}' set a password, once, "
            f"within {invitations.max_age_text()}.",
        )
    else:
        messages.error(
            request,
            f"'{name}' is invited, but the e-mail to {user.email} could not be sent (the mail "
            "server refused or did not answer). Send a new link once mail works.",
        )


def _flag(request: HttpRequest, name: str) -> bool | None:
    value = request.POST.get(name)
    return {"1": True, "0": False}.get(value) if isinstance(value, str) else None


def _refused_action(request: HttpRequest, reason: str) -> HttpResponse:
    messages.error(request, reason)
    return _back_to_list(request, status=303)


def _acted(request: HttpRequest, outcome: users.Outcome, done: str) -> HttpResponse:
    if outcome.refused:
        return _refused_action(request, outcome.refused)
    messages.success(request, done.format(name=outcome.target.get_username()))
    return _back_to_list(request)


def _bad_flag(request: HttpRequest, name: str) -> HttpResponse:
    messages.error(request, f"'{name}' is 1 or 0 here.")
    return _users_page(request, status=400)


def _set_flag(
    request: HttpRequest, pk: int, name: str, on: str, off: str, said: tuple
) -> HttpResponse:
    """A yes/no of a user (``name`` is 1 or 0 in the POST): the action ``on`` or ``off`` of
    accounts.users, and what the page then says (``said``: for on, for off)."""
    value = _flag(request, name)
    if value is None:
        return _bad_flag(request, name)
    try:
        outcome = users.change(request.user, pk, on if value else off)
    except ObjectDoesNotExist:
        raise Http404("No such user.") from None
    return _acted(request, outcome, said[0] if value else said[1])


@login_required
@require_POST
@staff_only
def user_active(request: HttpRequest, pk: int) -> HttpResponse:
    said = (
        "'{name}' is active again: they may sign in.",
        "'{name}' is deactivated: signed out everywhere, API tokens refused.",
    )
    return _set_flag(request, pk, "active", users.REACTIVATE, users.DEACTIVATE, said)


@login_required
@require_POST
@staff_only
def user_staff(request: HttpRequest, pk: int) -> HttpResponse:
    said = ("'{name}' is staff now.", "'{name}' is no longer staff.")
    return _set_flag(request, pk, "staff", users.MAKE_STAFF, users.REMOVE_STAFF, said)


@login_required
@require_POST
@staff_only
def user_invite_again(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        outcome = invitations.invite_again(request.user, pk)
    except ObjectDoesNotExist:
        raise Http404("No such user.") from None
    if outcome.refused:
        return _refused_action(request, outcome.refused)
    _sent(request, outcome.target, outcome.code)
    return _back_to_list(request)


# --- the invitee's pages (anyone with the link) ------------------------------------------------

REFUSED_STATUS = {
    invitations.INVALID: 400,
    invitations.MISSING: 400,
    invitations.USED: 410,
    invitations.EXPIRED: 410,
    invitations.INACTIVE: 403,
}


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _refused(request: HttpRequest, state: str, invitation=None) -> HttpResponse:
    context = {"state": state, "max_age": invitations.max_age_text()}
    if invitation is not None and state == invitations.USED:
        context["username"] = invitation.user.get_username()
    return _private(
        render(request, "accounts/welcome_refused.html", context, status=REFUSED_STATUS[state])
    )


@sensitive_post_parameters("code")
def welcome(request: HttpRequest) -> HttpResponse:
    """The link's page: its script posts the code from the fragment, which no server saw."""
    if request.method == "POST":
        state, invitation = invitations.redeem(request.POST.get("code", ""))
        if state != invitations.OK:
            return _refused(request, state, invitation)
        invitations.grant(request, invitation)
        return HttpResponseRedirect(reverse("users:set-password"), status=303)
    return _private(render(request, "accounts/welcome.html"))


@sensitive_post_parameters("new_password1", "new_password2")
def welcome_password(request: HttpRequest) -> HttpResponse:
    """Set the password of the granted invitation (Django's form and password validators);
    then the sign-in page."""
    state, invitation = invitations.granted(request)
    if state != invitations.OK:
        return _refused(request, state, invitation)
    form = SetPasswordForm(invitation.user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if not invitations.accept(request, invitation, form.cleaned_data["new_password1"]):
            return _refused(request, invitations.USED, invitation)
        messages.success(
            request,
            f"Your password is set. Sign in as '{invitation.user.get_username()}'.",
        )
        return redirect("login")
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "invited": invitation.user}
    return _private(render(request, "accounts/welcome_password.html", context, status=status))
