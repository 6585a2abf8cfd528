"""The small pieces every page shares: relative times, icons, the favicon."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from connections.kinds import KINDS
from meshplay.templatetags.ui import ago_text

NOW = timezone.now()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-30, "just now"),  # a clock ahead of ours
        (0, "just now"),
        (4, "just now"),
        (5, "5 s ago"),
        (59, "59 s ago"),
        (60, "1 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (86399, "23 h ago"),
        (86400 * 3 + 5, "3 d ago"),
    ],
)
def test_relative_times_never_say_zero_minutes(seconds, text):
    assert ago_text(NOW - timedelta(seconds=seconds), now=NOW) == text


def test_a_moment_never_seen_reads_never():
    assert ago_text(None) == "never"


def test_every_kind_has_an_icon_of_the_sprite():
    from django.conf import settings

    sprite = (settings.BASE_DIR / "static" / "vendor" / "lucide" / "sprite.svg").read_text()
    for kind in KINDS.values():
        assert f'<symbol id="{kind.icon}"' in sprite, kind.slug


def test_an_icon_is_decoration_unless_labelled():
    plain = Template('{% load ui %}{% icon "flame" %}').render(Context())
    assert 'aria-hidden="true"' in plain and "sprite.svg#flame" in plain
    named = Template('{% load ui %}{% icon "flame" "Prometheus" %}').render(Context())
    assert 'role="img"' in named and "<title>Prometheus</title>" in named


def test_favicon_ico_leads_to_the_vendored_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.svg")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"]
)
def test_the_password_pages_are_ours_not_the_admins(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert b"auth-card" in response.content and b"breadcrumbs" not in response.content


@pytest.mark.django_db
def test_a_used_reset_link_says_so(client):
    response = client.get("/accounts/reset/MQ/set-password/", follow=True)
    assert response.status_code == 200
    assert b"This link is not valid" in response.content


@pytest.mark.django_db
def test_the_password_change_pages_are_ours(client, owner):
    client.force_login(owner)
    for path in ("/accounts/password_change/", "/accounts/password_change/done/"):
        response = client.get(path)
        assert response.status_code == 200 and b"breadcrumbs" not in response.content
