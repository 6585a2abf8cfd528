"""Choosing an environment's new members by name: ``addable`` is the members picker's one
query, served to its search box by ``views.environment_member_options``
(templates/environments/detail.html). Only whoever manages the members may ask it.

It shows user names and names, never an e-mail address, and never matches one: anyone may own
an environment, so the picker must be neither a directory of addresses nor a way to learn whose
an address is."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from connections.picking import search_text

from .forms import member_candidates
from .models import Environment

LIMIT = 20  # users a search shows at once: type more of the name to narrow them
SEARCH_WORDS = 5  # a search finds the users whose names hold every one of its first words


def addable(environment: Environment, q: str = "") -> QuerySet:
    """The active users who are not yet in ``environment`` (nor own it) whose user name, first
    or last name hold every word of ``q``; by user name, at most LIMIT."""
    users = member_candidates(environment).exclude(pk__in=environment.memberships.values("user_id"))
    q = search_text(q)
    if q:
        named = Q()
        for word in q.split()[:SEARCH_WORDS]:
            named &= (
                Q(username__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
            )
        users = users.filter(named)
    return users.only("pk", "username", "first_name", "last_name").order_by("username", "pk")[
        :LIMIT
    ]
