"""Invitations: staff invite someone by e-mail, who sets their own password through a link that
works once and for ``INVITE_MAX_AGE`` seconds.

The link's token is Django's (``PasswordResetTokenGenerator``, with its own salt and an HMAC of
the invitation's id and ``issued_at`` and the user's e-mail address): nothing of it is stored, so
issuing a new link (a new ``issued_at``) ends every earlier one, and ``accepted_at`` ends it once
used. The token travels in the link's fragment (``/accounts/welcome/#<code>``), which browsers
never send: the welcome page posts it, so it is in no access log, no Referer and no session. The
session then holds a grant (the invitation's id and ``issued_at``), never the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int, int_to_base36

from core.ids import parse_id

from . import users
from .models import Invitation

log = logging.getLogger(__name__)

# What a link (or a browser's grant) is worth
OK = "ok"  # it may set the password
INVALID = "invalid"  # not made here, incomplete, or replaced by a newer link
USED = "used"  # a password is set
EXPIRED = "expired"  # older than INVITE_MAX_AGE
INACTIVE = "inactive"  # the user is deactivated
MISSING = "missing"  # this browser opened no link
GRANT = "accounts.invitation"  # the session key of the grant to set a password
MAX_CODE_LENGTH = 100


class InvitationTokens(PasswordResetTokenGenerator):
    """Django's reset tokens with a salt of their own (a reset token is no invitation, nor the
    reverse), over the invitation rather than the user's password."""

    key_salt = "accounts.invitations.InvitationTokens"

    def _make_hash_value(self, invitation: Invitation, timestamp: int) -> str:
        issued = instant(invitation.issued_at)
        return f"{invitation.pk}|{issued}|{invitation.user.email}|{timestamp}"

    def signed(self, invitation: Invitation, token: str) -> bool:
        """Whether ``token`` was made for this invitation as it is now (its age aside: an
        invitation's age is its ``issued_at``'s)."""
        timestamp, _, _ = token.partition("-")
        try:
            made = base36_to_int(timestamp)
        except ValueError:
            return False
        return any(
            constant_time_compare(self._make_token_with_timestamp(invitation, made, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        )


tokens = InvitationTokens()


def instant(moment: datetime) -> str:
    """A moment as the same text whichever database or driver read it (UTC, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def max_age_text() -> str:
    """How long a link works, as people say it: "3 days", "12 hours", "30 minutes"."""
    seconds = settings.INVITE_MAX_AGE
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' * (count != 1)}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' * (minutes != 1)}"


def expires_at(invitation: Invitation) -> datetime:
    return invitation.issued_at + timedelta(seconds=settings.INVITE_MAX_AGE)


def state(invitation: Invitation, now: datetime | None = None) -> str:
    """OK while its link may set the password; USED once a password is set (by the link or
    otherwise), EXPIRED after ``INVITE_MAX_AGE``, INACTIVE while the user is deactivated."""
    user = invitation.user
    if invitation.accepted_at is not None or user.has_usable_password():
        return USED
    if (now or timezone.now()) > expires_at(invitation):
        return EXPIRED
    if not user.is_active:
        return INACTIVE
    return OK


def code_of(invitation: Invitation) -> str:
    """What the link carries: the invitation's id and its token."""
    return f"{int_to_base36(invitation.pk)}-{tokens.make_token(invitation)}"


def link(request: HttpRequest, code: str) -> str:
    return request.build_absolute_uri(reverse("users:welcome")) + "#" + code


def invite(
    actor: Any, *, email: str, username: str, first_name: str, last_name: str
) -> tuple[Any, str]:
    """A new user without a usable password, and their invitation's code. IntegrityError when
    the user name was taken meanwhile."""
    with transaction.atomic():
        user = get_user_model()(
            username=username, email=email, first_name=first_name, last_name=last_name
        )
        user.set_unusable_password()
        user.save()
        invitation = Invitation.objects.create(
            user=user, invited_by=actor, issued_at=timezone.now()
        )
    return user, code_of(invitation)


@dataclass(frozen=True)
class Reissued:
    target: Any
    code: str = ""
    refused: str | None = None


def invite_again(actor: Any, pk: int) -> Reissued:
    """A new link for user ``pk`` (the earlier ones stop working); DoesNotExist for an unknown
    id. Asks the same rule as the page (``users.refusal``)."""
    with transaction.atomic():
        target = get_user_model().objects.select_for_update().get(pk=pk)
        reason = users.refusal(actor, target, users.INVITE_AGAIN)
        if reason:
            return Reissued(target, refused=reason)
        invitation, _ = Invitation.objects.update_or_create(
            user=target,
            defaults={"invited_by": actor, "issued_at": timezone.now(), "accepted_at": None},
        )
    return Reissued(target, code_of(invitation))


def send(request: HttpRequest, user: Any, code: str) -> bool:
    """E-mail the link; False when the mail server refused or did not answer (``EMAIL_TIMEOUT``).
    The log line names the user and the error's class, never the link."""
    body = render_to_string(
        "accounts/invitation_email.txt",
        {
            "user": user,
            "inviter": request.user,
            "link": link(request, code),
            "max_age": max_age_text(),
        },
    )
    message = EmailMessage(
        subject="You are invited to Meshplay Connections",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    try:
        message.send()
    except Exception as exc:  # any failure of the mail server is this one invitation's
        log.warning("invitation e-mail to user %s not sent: %s", user.pk, type(exc).__name__)
        return False
    return True


def _invitation(pk: Any) -> Invitation | None:
    number = parse_id(pk)
    if number is None:
        return None
    return Invitation.objects.select_related("user").filter(pk=number).first()


def redeem(code: str) -> tuple[str, Invitation | None]:
    """What a link's code is worth: (OK, its invitation), or why not. A code not made here is
    INVALID, whatever it names; a newer link makes an older one INVALID too."""
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_LENGTH or not code.isascii():
        return INVALID, None
    pk, _, token = code.partition("-")
    try:
        invitation = _invitation(str(base36_to_int(pk))) if pk.isalnum() else None
    except ValueError:
        invitation = None
    if invitation is None or not tokens.signed(invitation, token):
        return INVALID, None
    return state(invitation), invitation


def grant(request: HttpRequest, invitation: Invitation) -> None:
    """This browser may set the invitation's password (until it is used, replaced or old)."""
    request.session[GRANT] = {"id": invitation.pk, "issued": instant(invitation.issued_at)}


def granted(request: HttpRequest) -> tuple[str, Invitation | None]:
    """The invitation this browser was granted, and its state (MISSING without a grant; INVALID
    when a newer link replaced it since)."""
    held = request.session.get(GRANT)
    if not isinstance(held, dict):
        return MISSING, None
    invitation = _invitation(held.get("id"))
    if invitation is None or instant(invitation.issued_at) != held.get("issued"):
        return INVALID, None
    return state(invitation), invitation


def accept(request: HttpRequest, invitation: Invitation, password: str) -> bool:
    """Set the password, once: False when the invitation was used, replaced or ended meanwhile
    (two tabs, a new link)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Invitation.objects.filter(
            pk=invitation.pk,
            issued_at=invitation.issued_at,
            issued_at__gte=now - timedelta(seconds=settings.INVITE_MAX_AGE),
            accepted_at__isnull=True,
        ).update(accepted_at=now)
        user = get_user_model().objects.select_for_update().get(pk=invitation.user_id)
        if not claimed or user.has_usable_password() or not user.is_active:
            transaction.set_rollback(True)
            return False
        user.set_password(password)
        user.save(update_fields=["password"])
    request.session.pop(GRANT, None)
    return True
