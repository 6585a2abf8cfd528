"""The small pieces every page shares: relative times, icons, the favicon."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from connections.kinds import KINDS
from core.templatetags.ui import ago_text

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


# ---- what a web worker does before its first request --------------------------------------


def test_a_worker_compiles_every_template_of_ours_before_its_first_request(settings):
    """Every template the project has compiles (a syntax error in a page few users open shows
    here, not in front of them), and the worker is warm: it read the URLs and the static
    manifest's names."""
    from meshplay.warmup import template_names, warm_up

    settings.DEBUG = False
    names = template_names()
    assert {"base.html", "connections/_table.html", "overview/page.html"} <= set(names)
    assert not any(
        name.startswith(("rest_framework/", "django_filters/", "django_tables2/")) for name in names
    )
    done = warm_up()
    assert done["failed"] == [] and done["templates"] == len(names)


def test_a_broken_template_is_logged_and_the_worker_serves_anyway(settings, tmp_path, caplog):
    from meshplay.warmup import warm_up

    (tmp_path / "broken.html").write_text("{% if %}")
    settings.DEBUG = False
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]},
        *settings.TEMPLATES[1:],  # the Jinja2 engine of the hot fragments
    ]
    (tmp_path / "latin1.html").write_bytes(b"caf\xe9")  # not UTF-8
    done = warm_up()
    assert done["failed"] == ["broken.html", "latin1.html"]
    assert "broken.html does not compile" in caplog.text


def test_warming_up_opens_no_database_connection(settings):
    """With --preload the application loads in gunicorn's master: a connection opened there
    would be shared by every worker forked from it. (This test may not touch the database:
    pytest-django fails it if anything connects.)"""
    from django.db import connections

    from meshplay.warmup import warm_up

    settings.DEBUG = False
    for each in connections.all():
        each.close()  # whatever an earlier test left open
    warm_up()
    assert all(c.connection is None for c in connections.all())


def test_links_served_under_a_path_carry_it(client, owner, make_connection):
    """Behind a proxy that serves the app under /meshplay/, every link the table and the
    overview draw starts with it (links are reversed per request, never kept)."""
    from django.urls import set_script_prefix

    from connections.choices import Status

    conn = make_connection(Status.DISCONNECTED, name="prefixed")
    client.force_login(owner)
    set_script_prefix("/meshplay/")  # what the WSGI handler does for SCRIPT_NAME=/meshplay
    try:
        for path in ("/connections/", "/"):
            body = client.get(path).content.decode()
            assert f'href="/meshplay/connections/{conn.pk}/"' in body, path
            assert f'href="/connections/{conn.pk}/"' not in body, path
    finally:
        set_script_prefix("/")


def test_a_state_this_release_does_not_know_is_a_badge_with_its_name():
    """An event recorded by another release may name a state this one has no style for."""
    from connections.templatetags.connection_table import state_badge

    assert state_badge(None, "frozen", "Frozen") == (
        '<span class="badge state-frozen"><span aria-hidden="true"></span> Frozen</span>'
    )
