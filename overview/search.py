"""The header's search: one box that finds connections, environments, credentials and
notification channels by name (connections also by URL or tag), each only among what the user
may see. A few of each; the connections' "all N" opens the table with the same search."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from connections.exporting import NotMatching, matching
from core.text import has_control_characters
from credentials.models import Credential
from environments.models import Environment
from notifications.models import Channel

SHOWN = 10  # of each kind
MAX_QUERY = 200


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    text = request.GET.get("q", "").strip()
    problem = ""
    if len(text) > MAX_QUERY:
        problem = f"A search has at most {MAX_QUERY} characters."
    elif has_control_characters(text):
        problem = "A search cannot hold control characters (a line break, a NUL)."
    context: dict = {"q": "" if problem else text, "groups": [], "problem": problem}
    if not text or problem:
        return render(request, "overview/search.html", context, status=400 if problem else 200)
    user = request.user
    try:
        connections = matching(request, QueryDict(urlencode({"q": text})))
    except NotMatching:  # a text the table's search refuses (a NUL, say): nothing found
        connections = None
    table = reverse("connections:list") + "?" + urlencode({"q": text})
    groups = [
        (
            "Connections",
            lambda row: reverse("connections:detail", args=[row.pk]),
            connections.order_by("name", "pk") if connections is not None else [],
            table,
        ),
        (
            "Environments",
            lambda row: reverse("environments:detail", args=[row.pk]),
            Environment.objects.restrict(user).filter(name__icontains=text).order_by("name"),
            None,
        ),
        (
            "Credentials",
            lambda row: reverse("credentials:list") + f"#credential-{row.pk}",
            Credential.objects.restrict(user).filter(name__icontains=text).order_by("name"),
            None,
        ),
        (
            "Notification channels",
            lambda row: reverse("notifications:channel", args=[row.pk]),
            Channel.objects.restrict(user).filter(Q(name__icontains=text)).order_by("name"),
            None,
        ),
    ]
    for title, link, rows, more_url in groups:
        found = list(rows[: SHOWN + 1])
        context["groups"].append(
            {
                "title": title,
                "rows": [(row, link(row)) for row in found[:SHOWN]],
                "more": len(found) > SHOWN,
                "more_url": more_url,
            }
        )
    context["found"] = any(group["rows"] for group in context["groups"])
    return render(request, "overview/search.html", context)
