"""Sign-in throttling (django-axes): a user name is locked out from one address after
AXES_FAILURE_LIMIT failures, for AXES_COOLOFF_TIME, with a 429 page that says nothing about
whether the user exists; the passwords tried are never stored."""

import re
from datetime import timedelta

import pytest
from axes.exceptions import AxesBackendRequestParameterRequired
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.forms.models import model_to_dict

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
WRONG = "WRONG-pw-never-stored-4711"


@pytest.fixture(autouse=True)
def throttle(settings):
    """The production values, whatever the environment of the test run says."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = 15 / 60  # hours, as settings.py computes it
    return settings


def sign_in(client, username, password, *, url=LOGIN, address="127.0.0.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, username, times, **kwargs):
    return [sign_in(client, username, WRONG, **kwargs).status_code for _ in range(times)]


def page(response, username="") -> str:
    """The page without its (random) CSRF tokens, and with the user name typed blanked."""
    text = re.sub(r'"X-CSRFToken": "[^"]*"', "", response.content.decode())
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", text)
    return text.replace(f'value="{username}"', 'value=""') if username else text


def test_the_sixth_attempt_is_refused_even_with_the_right_password(client, owner):
    # four failures answer the form again; the fifth reaches the limit and locks out
    assert fail(client, "owner", 4) == [200] * 4
    assert fail(client, "owner", 1) == [429]
    response = sign_in(client, "owner", "pw-owner-123")
    assert response.status_code == 429
    assert not signed_in(client)
    text = response.content.decode()
    assert "Too many failed sign-ins were made" in text
    assert "try again after 15 minutes" in text
    assert "owner" not in text  # the user name is not echoed
    assert "registration/locked_out.html" in [t.name for t in response.templates]


def test_the_lockout_is_per_user_name_and_address(client, owner, stranger):
    fail(client, "owner", 5)
    assert sign_in(client, "owner", "pw-owner-123").status_code == 429
    # another user name from the same address signs in
    response = sign_in(client, "stranger", "pw-stranger-123")
    assert response.status_code == 302 and signed_in(client)
    client.logout()
    # the same user name from another address too (the lock is on the pair)
    response = sign_in(client, "owner", "pw-owner-123", address="192.0.2.7")
    assert response.status_code == 302 and signed_in(client)


def test_after_the_cool_off_signing_in_works_again(client, owner):
    fail(client, "owner", 5)
    assert sign_in(client, "owner", "pw-owner-123").status_code == 429
    # fourteen minutes later: still locked (and the attempt extends the lock)
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=14)
    )
    assert sign_in(client, "owner", "pw-owner-123").status_code == 429
    # past the cool-off, measured from the last failure
    earlier = AccessAttempt.objects.get().attempt_time - timedelta(minutes=15, seconds=1)
    AccessAttempt.objects.update(attempt_time=earlier)
    response = sign_in(client, "owner", "pw-owner-123")
    assert response.status_code == 302 and signed_in(client)
    assert not AccessAttempt.objects.exists()


def test_a_success_resets_the_count(client, owner):
    assert fail(client, "owner", 4) == [200] * 4
    assert sign_in(client, "owner", "pw-owner-123").status_code == 302
    assert not AccessAttempt.objects.exists()
    client.logout()
    # four more failures: the count started again, so the right password still works
    assert fail(client, "owner", 4) == [200] * 4
    assert sign_in(client, "owner", "pw-owner-123").status_code == 302 and signed_in(client)


def test_the_admin_login_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_superuser("root", password="pw-root-2026")
    assert fail(client, "root", 4, url=ADMIN_LOGIN) == [200] * 4
    assert fail(client, "root", 1, url=ADMIN_LOGIN) == [429]
    response = sign_in(client, "root", "pw-root-2026", url=ADMIN_LOGIN)
    assert response.status_code == 429 and not signed_in(client)
    assert "Too many failed sign-ins were made" in response.content.decode()
    # the lock is shared with the dashboard's sign-in page
    assert sign_in(client, "root", "pw-root-2026").status_code == 429


def test_the_lockout_page_does_not_say_whether_the_user_exists(client, owner):
    fail(client, "owner", 5)
    known = sign_in(client, "owner", "pw-owner-123")
    fail(client, "nobody-by-this-name", 5)
    unknown = sign_in(client, "nobody-by-this-name", "pw-owner-123")
    assert known.status_code == unknown.status_code == 429
    assert page(known) == page(unknown)
    # and before the lock, a wrong password and an unknown user get the same form
    wrong_password = sign_in(client, "owner", WRONG, address="192.0.2.8")
    no_such_user = sign_in(client, "nobody-by-this-name", WRONG, address="192.0.2.8")
    assert wrong_password.status_code == no_such_user.status_code == 200
    assert page(wrong_password, "owner") == page(no_such_user, "nobody-by-this-name")


def test_the_passwords_tried_are_never_stored(client, owner, throttle, caplog):
    throttle.AXES_ENABLE_ACCESS_FAILURE_LOG = True
    with caplog.at_level("DEBUG"):
        fail(client, "owner", 5)
        fail(client, "nobody", 1)
        sign_in(client, "stranger", WRONG)
    attempts = list(AccessAttempt.objects.all())
    assert len(attempts) == 3 and AccessFailureLog.objects.count() == 7
    for attempt in attempts:
        assert "password=********************" in attempt.post_data
    rows = [*attempts, *AccessFailureLog.objects.all(), *AccessLog.objects.all()]
    for row in rows:
        assert WRONG not in repr(model_to_dict(row))
    assert WRONG not in caplog.text


def test_client_login_needs_a_request_so_tests_use_force_login(client, owner):
    # axes checks every authenticate() call against the request; the test client's login()
    # passes none, which axes refuses. The tests sign in with force_login (no password check)
    # or post to the sign-in page, as the throttling tests above do.
    with pytest.raises(AxesBackendRequestParameterRequired):
        client.login(username="owner", password="pw-owner-123")
    client.force_login(owner)
    assert client.get("/connections/").status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled_not_the_proxy(
    settings, django_user_model
):
    """Behind a proxy every sign-in comes from the proxy's address: the throttle must count the
    client the proxy names, or one attacker would lock a user out for everyone."""
    from django.test import RequestFactory

    from accounts.client_ip import client_ip

    factory = RequestFactory()
    settings.TRUSTED_PROXIES = ["10.9.9.9"]
    through_proxy = factory.get(
        "/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.5"
    )
    assert client_ip(through_proxy) == "203.0.113.5"
    # a client that writes the header itself is not believed
    direct = factory.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert client_ip(direct) == "192.0.2.1"
    settings.TRUSTED_PROXIES = []
    assert client_ip(through_proxy) == "10.9.9.9"
