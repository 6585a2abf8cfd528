"""Temporary review probes (to be deleted)."""

from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.db import SessionStore as Stock
from django.contrib.sessions.models import Session
from django.db import connection as db
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from connections.choices import Status
from connections.models import Connection, ConnectionTransition
from environments.models import Environment, EnvironmentMembership
from meshplay import sessions as ms
from meshplay.dbfunctions import Epoch
from meshplay.sessions import SessionStore as Kept
from overview import summary

pytestmark = pytest.mark.django_db
LIST = reverse("connections:list")


def outcome(cls, key):
    store = cls(key)
    try:
        data = store.load()
        return ("ok", data, store.session_key)
    except Exception as e:  # noqa: BLE001
        return ("err", type(e).__name__, str(e)[:60])


KEYS = [
    "x" * 32,
    "a" * 41,
    "a" * 300,
    "ключ-юникод-12345",
    "abc%sdef%%",
    "abcdefgh\x00ijk",
    "\x00kept-session-key\x00",
]


@pytest.mark.parametrize("key", KEYS)
def test_same_as_stock_for_odd_keys(owner, key):
    print(db.vendor, repr(key), outcome(Stock, key), outcome(Kept, key))
    assert outcome(Stock, key) == outcome(Kept, key)


def test_valid_and_expiry_boundaries(owner):
    s = Stock()
    s["a"] = 1
    s.create()
    s["a"] = 1
    s.save()
    key = s.session_key
    for micro in (0, 1, 999999):
        exp = timezone.now().replace(microsecond=micro) + timedelta(hours=1)
        Session.objects.filter(pk=key).update(expire_date=exp)
        for now in (exp - timedelta(microseconds=1), exp, exp + timedelta(microseconds=1),
                    exp.replace(microsecond=0), exp - timedelta(seconds=1)):
            with mock.patch("django.utils.timezone.now", return_value=now):
                a, b = outcome(Stock, key), outcome(Kept, key)
            assert a == b, (micro, now, a, b)


def test_async_load(owner):
    client = Client()
    client.force_login(owner)
    key = client.cookies["sessionid"].value
    data = async_to_sync(Kept(key).aload)()
    assert data["_auth_user_id"] == str(owner.pk)


def test_cookie_with_nul(owner):
    client = Client(raise_request_exception=False)
    r1 = client.get(LIST, HTTP_COOKIE='sessionid="\\000abcdefghijk"')
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db"):
        r2 = client.get(LIST, HTTP_COOKIE='sessionid="\\000abcdefghijk"')
    print(db.vendor, "nul cookie", r1.status_code, r2.status_code)
    assert r1.status_code == r2.status_code


def test_fixation_login_cycles_key(owner):
    attacker = Client()
    attacker.get(reverse("login"))
    s = Kept()
    s["x"] = 1
    s.create()
    s.save()
    fixed = s.session_key
    victim = Client()
    victim.cookies["sessionid"] = fixed
    r = victim.post(reverse("login"), {"username": "owner", "password": "pw-owner-123"})
    assert r.status_code == 302, r.status_code
    new = victim.cookies["sessionid"].value
    assert new != fixed
    assert not Session.objects.filter(pk=fixed).exists()
    other = Client()
    other.cookies["sessionid"] = fixed
    assert other.get(LIST).status_code == 302


def test_use_tz_false(owner):
    s = Stock()
    s["a"] = 1
    s.create()
    key = s.session_key
    ms._kept.clear()
    try:
        with override_settings(USE_TZ=False):
            a = outcome(Stock, key)
            b = outcome(Kept, key)
        print(db.vendor, "USE_TZ=False", a, b)
        assert a == b
    finally:
        ms._kept.clear()


# ---- overview ----------------------------------------------------------------------------


def test_epoch_matches(owner, make_connection):
    c = make_connection(Status.CONNECTED)
    for micro in (0, 1, 123456, 999999):
        at = timezone.now().replace(microsecond=micro) - timedelta(hours=3)
        Connection.all_objects.filter(pk=c.pk).update(created_at=at)
        e = Connection.all_objects.filter(pk=c.pk).annotate(e=Epoch("created_at")).values_list(
            "e", flat=True
        )[0]
        print(db.vendor, micro, e - at.timestamp())
        assert abs(e - at.timestamp()) < 0.002


def test_clock_skew_future_created(owner, make_connection):
    now = timezone.now()
    c = make_connection(Status.CONNECTED)
    Connection.all_objects.filter(pk=c.pk).update(
        created_at=now + timedelta(hours=1), status_changed_at=now + timedelta(hours=1)
    )
    o = summary.build(owner, now=now)
    print("future: up", o.total.up_seconds, "down", o.total.down_seconds, o.total.uptime)
    assert o.total.up_seconds >= 0


def test_transitions_moved_out_and_ties(monkeypatch, owner, make_connection, django_user_model):
    monkeypatch.setattr(summary, "TRANSITION_PAGE", 4)
    prod = Environment.objects.create(name="prod", owner=owner)
    viewer = django_user_model.objects.create_user("viewer2", password="pw-viewer-1")
    EnvironmentMembership.objects.create(environment=prod, user=viewer, role="viewer")
    shared = make_connection(Status.CONNECTED)
    moved = make_connection(Status.CONNECTED)
    private = make_connection(Status.CONNECTED)
    prod.connections.add(shared, moved)
    at = timezone.now() - timedelta(minutes=5)
    for i in range(40):
        for c in (private, moved, shared) if i % 2 else (shared, private, moved):
            ConnectionTransition.objects.create(
                connection=c, from_status="connected", to_status="connected",
                created_at=at - timedelta(seconds=i // 3), reason=f"{c.name}-{i}",
            )
    prod.connections.remove(moved)
    got = [t.pk for t in summary.build(viewer).transitions]
    visible = Connection.all_objects.restrict(viewer)
    want = list(
        ConnectionTransition.objects.filter(connection__in=visible.values("pk"))
        .order_by("-created_at", "-pk").values_list("pk", flat=True)[:20]
    )
    assert got == want
    assert all(t.connection_id == shared.pk for t in summary.build(viewer).transitions)
