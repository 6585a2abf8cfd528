"""Sessions: Django's cached_db store (the cache on Redis, written through to the database), and
core.sessions dropping a cookie no key could be. Signing in, staying signed in, expiry and
signing out must be exactly Django's."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.cached_db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

LIST = reverse("connections:list")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_session_read_from_the_cache_keeps_its_user_signed_in(owner):
    client = signed_in(owner)
    assert client.get(LIST).status_code == 200
    key = client.cookies["sessionid"].value
    assert SessionStore(key).load()["_auth_user_id"] == str(owner.pk)


def test_an_expired_session_signs_out(owner):
    client = signed_in(owner)
    key = client.cookies["sessionid"].value
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    cache.delete(SessionStore(key).cache_key)  # as its time to live in the cache ran out then
    response = client.get(LIST)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    store = SessionStore(key)
    assert store.load() == {} and store.session_key is None  # a new session, not the old one


def test_an_unknown_or_forged_key_is_a_new_empty_session(owner):
    signed_in(owner)
    for key in ("x" * 32, "'; DROP TABLE django_session; --", "%" * 40, "a\\" * 20):
        store = SessionStore(key)
        assert store.load() == {}
    assert Session.objects.count() == 1  # nothing was written, nothing was dropped
    client = Client()
    client.cookies["sessionid"] = "x" * 32
    assert client.get(LIST).status_code == 302


def test_signing_out_ends_the_session_for_every_tab(owner):
    client = signed_in(owner)
    other_tab = Client()
    other_tab.cookies["sessionid"] = client.cookies["sessionid"].value
    assert other_tab.get(LIST).status_code == 200
    client.post(reverse("logout"))
    assert other_tab.get(LIST).status_code == 302


def test_a_cookie_no_session_key_could_be_is_a_new_session_not_a_500(owner):
    """PostgreSQL refuses a NUL in text: a forged key with one must never reach the database."""
    for forged in ("\x00abcdefghijk", "a" * 41, "abc", "abcdefgh-ijkl", "abcdéfghijkl"):
        client = Client()
        client.cookies["sessionid"] = forged
        response = client.get(LIST)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_session_the_cache_lost_is_read_from_the_database(owner):
    """Redis restarted (or evicted the key): the session is still there, and cached again."""
    client = signed_in(owner)
    key = client.cookies["sessionid"].value
    cache.delete(SessionStore(key).cache_key)
    assert client.get(LIST).status_code == 200
    assert cache.get(SessionStore(key).cache_key)["_auth_user_id"] == str(owner.pk)


def test_with_the_cache_away_pages_sign_in_and_out_still_work(owner):
    """Redis down (nothing listens where the cache is): the cache is a help, never a
    requirement. Pages, signing in and signing out read and write the database alone."""
    from django.test.utils import override_settings

    unreachable = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=unreachable):  # Django resets its caches for it
        client = Client()
        response = client.post(
            reverse("login"), {"username": owner.username, "password": "pw-owner-123"}
        )
        assert response.status_code == 302
        assert client.get(LIST).status_code == 200
        assert client.post(reverse("logout")).status_code == 302
        assert client.get(LIST).status_code == 302  # signed out


def test_a_cached_session_lives_minutes_not_weeks(owner):
    """The database is the truth: a session signed out while Redis did not answer is forgotten
    by the cache within MAX_ENTRY_SECONDS, never kept for the two weeks a session lives."""
    from django.core.cache import cache

    client = signed_in(owner)
    key = SessionStore(client.cookies["sessionid"].value).cache_key
    client.get(LIST)
    ttl = cache._cache.get_client(key).ttl(cache.make_and_validate_key(key))
    assert 0 < ttl <= 300


def test_readiness_says_whether_the_cache_answers(client):
    """The cache away is "degraded" (200: the web still serves), never "unavailable"."""
    from django.test.utils import override_settings

    ready = client.get("/readyz").json()
    assert ready["cache"] == "ok" and ready["status"] in ("ok", "degraded")
    unreachable = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=unreachable):
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["cache"] == "error: ConnectionError"
        assert response.json()["status"] == "degraded"
    with override_settings(CACHES={"default": {"BACKEND": DUMMY}}):
        assert client.get("/readyz").json()["cache"] == "none"


DUMMY = "django.core.cache.backends.dummy.DummyCache"


def test_clearing_the_cache_keeps_what_else_lives_in_its_redis_database(owner):
    """The cache shares the broker's Redis database by default: clearing it deletes its own
    keys (sessions) and never the queues."""
    client = signed_in(owner)
    client.get(LIST)
    key = SessionStore(client.cookies["sessionid"].value).cache_key
    redis = cache._cache.get_client(write=True)
    redis.rpush("celery", b"a queued task")
    try:
        assert cache.get(key) is not None
        cache.clear()
        assert cache.get(key) is None
        assert b"a queued task" in redis.lrange("celery", 0, -1)  # (other tests may queue too)
        assert client.get(LIST).status_code == 200  # the session is in the database still
    finally:
        redis.delete("celery")


def test_a_redis_that_never_answers_costs_one_timeout_then_is_left_alone(owner):
    """A Redis that accepts connections and never answers: the first request waits for the
    socket timeout, the next ones in the pause do not even connect."""
    import socket
    import threading

    from django.test.utils import override_settings

    from core import cache as cache_module

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)  # kept open, never answered

    threading.Thread(target=accept, daemon=True).start()
    location = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    silent = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": location,
            "RETRY_AFTER": 60,
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    try:
        with override_settings(CACHES=silent):
            client = signed_in(owner)
            assert client.get(LIST).status_code == 200
            connections = len(accepted)
            assert connections >= 1  # it tried, and timed out
            for _ in range(3):
                assert client.get(LIST).status_code == 200
            assert len(accepted) == connections  # left alone during the pause
    finally:
        cache_module._paused_until.pop(location, None)
        listener.close()
        for conn in accepted:
            conn.close()
