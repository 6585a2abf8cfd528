"""Who may manage users, and the changes staff make to them: one rule for the buttons the users
page offers and for the POSTs it accepts (``refusal``), and the changes themselves."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core import access

DEACTIVATE, REACTIVATE = "deactivate", "reactivate"
MAKE_STAFF, REMOVE_STAFF = "make_staff", "remove_staff"
INVITE_AGAIN = "invite_again"
ACTIONS = (DEACTIVATE, REACTIVATE, MAKE_STAFF, REMOVE_STAFF, INVITE_AGAIN)
SEARCH_WORDS = 5  # a search matches users who match every one of its first words


def manages_users(user: Any) -> bool:
    """Active staff (superusers included) manage users; nobody else sees the users page."""
    return access.active(user) and bool(user.is_staff or user.is_superuser)


def refusal(actor: Any, target: Any, action: str) -> str | None:
    """Why ``actor`` may not take ``action`` on ``target`` now, or None when they may."""
    name = target.get_username()
    if not manages_users(actor):
        return "Only staff manage users."
    if target.is_superuser and not actor.is_superuser:
        return f"Only a superuser may change the superuser '{name}'."
    if target.pk == actor.pk and action == DEACTIVATE:
        return "You cannot deactivate yourself: ask another staff member."
    if target.pk == actor.pk and action == REMOVE_STAFF:
        return "You cannot remove your own staff flag: ask another staff member."
    in_effect = {
        DEACTIVATE: (not target.is_active, "is deactivated already"),
        REACTIVATE: (target.is_active, "is active already"),
        MAKE_STAFF: (target.is_staff, "is staff already"),
        REMOVE_STAFF: (not target.is_staff, "is not staff"),
    }
    done, what = in_effect.get(action, (False, ""))
    if done:
        return f"'{name}' {what}."
    if action == INVITE_AGAIN:
        if target.pk == actor.pk:
            return "You are signed in already: an invitation is for someone else."
        if not target.email:
            return f"'{name}' has no e-mail address to send a link to."
        if target.has_usable_password():
            return f"'{name}' has a password: sign-in works, an invitation is not needed."
        if not target.is_active:
            return f"'{name}' is deactivated: reactivate them first."
    return None


def offers(actor: Any, target: Any) -> dict[str, bool]:
    """The actions the users page offers ``actor`` on ``target``'s row."""
    return {action: refusal(actor, target, action) is None for action in ACTIONS}


def search(users: QuerySet, text: str) -> QuerySet:
    """The users whose user name, first or last name or e-mail address holds every word."""
    for word in text.split()[:SEARCH_WORDS]:
        users = users.filter(
            Q(username__icontains=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
        )
    return users


@dataclass(frozen=True)
class Outcome:
    target: Any
    refused: str | None = None


CHANGES = {
    DEACTIVATE: ("is_active", False),
    REACTIVATE: ("is_active", True),
    MAKE_STAFF: ("is_staff", True),
    REMOVE_STAFF: ("is_staff", False),
}


def change(actor: Any, pk: int, action: str) -> Outcome:
    """Take ``action`` (not ``INVITE_AGAIN``: ``invitations.invite_again``) on user ``pk``, with
    the row locked while the rule is asked; DoesNotExist for an unknown id. A deactivated user's
    sessions end at once (their API tokens are refused while they are inactive:
    ``accounts/api.py``)."""
    field, value = CHANGES[action]
    with transaction.atomic():
        target = get_user_model().objects.select_for_update().get(pk=pk)
        reason = refusal(actor, target, action)
        if reason:
            return Outcome(target, reason)
        setattr(target, field, value)
        target.save(update_fields=[field])  # a post_save: live refresh hears it (accounts/apps)
    if action == DEACTIVATE:
        end_sessions(target)
    return Outcome(target)


def end_sessions(user: Any) -> int:
    """Delete every session signed in as ``user``; how many. Django's session table has no
    user column, so each live session is read: a rare staff action over a table of signed-in
    sessions only. A deactivated user is refused anyway (Django's ``ModelBackend.get_user``);
    this keeps a session from coming back if they are reactivated."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):
        return 0  # sessions outside the database (not this project's): is_active refuses them
    sessions = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    ended = 0
    user_id = str(user.pk)
    for key, data in sessions.values_list("session_key", "session_data").iterator(2000):
        if store().decode(data).get(SESSION_KEY) == user_id:
            store(session_key=key).delete()  # the cached copy too (cached_db)
            ended += 1
    return ended
