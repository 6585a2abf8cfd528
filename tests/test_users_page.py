"""The users page of staff: who may open it, invitations by e-mail (a link that works once and
expires), deactivating and reactivating, the staff flag, and bad input."""

import logging
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection as db
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, Invitation
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

LIST = reverse("users:list")
INVITE = reverse("users:invite")
WELCOME = reverse("users:welcome")
SET_PASSWORD = reverse("users:set-password")
LOGIN = reverse("login")
NEW_PASSWORD = "a-long-Unusual-passphrase-71"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "sam-staff", email="sam@example.com", password="pw-staff-123", is_staff=True
    )


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(
        "root", email="root@example.com", password="pw-root-123"
    )


def invite(client, email="ann@example.com", **fields):
    return client.post(INVITE, {"email": email, **fields})


def code_from_the_mail(index=-1) -> str:
    """The code in the link of the invitation e-mail (the part after #)."""
    found = re.search(r"http://testserver/accounts/welcome/#(\S+)", mail.outbox[index].body)
    assert found, mail.outbox[index].body
    return found.group(1)


def open_link(client, code):
    """What the welcome page's script does: post the fragment's code."""
    assert client.get(WELCOME).status_code == 200
    return client.post(WELCOME, {"code": code})


def set_password(code, password=NEW_PASSWORD, client=None):
    client = client or Client()
    opened = open_link(client, code)
    if opened.status_code != 303:
        return opened
    return client.post(SET_PASSWORD, {"new_password1": password, "new_password2": password})


def signs_in(username, password) -> bool:
    response = Client().post(LOGIN, {"username": username, "password": password})
    return response.status_code == 302


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- who may -----------------------------------------------------------------------------------


def test_a_user_who_is_not_staff_gets_the_friendly_403_everywhere(owner, stranger):
    client = client_for(owner)
    for response in (
        client.get(LIST),
        client.get(INVITE),
        invite(client),
        client.post(reverse("users:active", args=[stranger.pk]), {"active": "0"}),
        client.post(reverse("users:staff", args=[owner.pk]), {"staff": "1"}),
        client.post(reverse("users:invite-again", args=[stranger.pk])),
    ):
        assert response.status_code == 403
        assert "Not allowed" in text(response)
    stranger.refresh_from_db()
    owner.refresh_from_db()
    assert stranger.is_active and not owner.is_staff
    assert not mail.outbox


def test_anonymous_is_sent_to_sign_in(stranger):
    for url in (LIST, INVITE, reverse("users:active", args=[stranger.pk])):
        response = Client().post(url) if "active" in url else Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(f"{LOGIN}?next=")


def test_a_deactivated_staff_member_may_not_manage_users(staff):
    client = client_for(staff)
    staff.__class__.objects.filter(pk=staff.pk).update(is_active=False)
    assert client.get(LIST).status_code == 302  # signed out: the session is refused


def test_the_header_links_to_the_page_for_staff_only(staff, owner):
    link = f'href="{LIST}"'
    assert link in client_for(staff).get(reverse("overview")).content.decode()
    assert link not in client_for(owner).get(reverse("overview")).content.decode()


# --- invitations -------------------------------------------------------------------------------


def test_an_invitation_link_works_once(staff, django_user_model):
    response = invite(client_for(staff), username="ann", first_name="Ann", last_name="Lee")
    assert response.status_code == 302
    ann = django_user_model.objects.get(username="ann")
    assert not ann.has_usable_password() and ann.is_active
    assert mail.outbox[0].to == ["ann@example.com"]
    code = code_from_the_mail()

    done = set_password(code)
    assert done.status_code == 302 and done["Location"] == LOGIN
    assert signs_in("ann", NEW_PASSWORD)

    again = set_password(code, password="another-Long-passphrase-99")
    assert again.status_code == 410
    assert "This link was used already" in text(again)
    assert signs_in("ann", NEW_PASSWORD)
    assert not signs_in("ann", "another-Long-passphrase-99")


def test_a_page_opened_twice_sets_the_password_once(staff):
    invite(client_for(staff), username="ann")
    code = code_from_the_mail()
    first, second = Client(), Client()
    assert open_link(first, code).status_code == 303
    assert open_link(second, code).status_code == 303
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert first.post(SET_PASSWORD, form).status_code == 302
    late = second.post(SET_PASSWORD, {**form, "new_password1": "x-Other-passphrase-12"})
    assert late.status_code == 410
    assert signs_in("ann", NEW_PASSWORD)


def test_an_invitation_link_expires_after_invite_max_age(staff, settings):
    assert settings.INVITE_MAX_AGE == 3 * 24 * 3600  # the documented default
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        invite(client_for(staff), username="ann")
    code = code_from_the_mail()
    with time_machine.travel(start + timedelta(days=3, seconds=1), tick=False):
        refused = set_password(code)
    assert refused.status_code == 410
    assert "This link has expired" in text(refused)
    assert not signs_in("ann", NEW_PASSWORD)
    with time_machine.travel(start + timedelta(days=3, seconds=-60), tick=False):
        assert set_password(code).status_code == 302


def test_the_age_of_a_link_is_the_setting(staff, settings):
    settings.INVITE_MAX_AGE = 3600
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        invite(client_for(staff), username="ann")
    assert "within 1 hour" in mail.outbox[0].body
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        refused = set_password(code_from_the_mail())
    assert refused.status_code == 410 and "works for 1 hour" in text(refused)


def test_a_browser_that_opened_the_link_in_time_is_refused_once_it_expires(staff):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        invite(client_for(staff), username="ann")
        browser = Client()
        assert open_link(browser, code_from_the_mail()).status_code == 303
    with time_machine.travel(start + timedelta(days=4), tick=False):
        form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        assert browser.get(SET_PASSWORD).status_code == 410
        assert browser.post(SET_PASSWORD, form).status_code == 410
    assert not signs_in("ann", NEW_PASSWORD)


def test_a_new_link_replaces_the_old_one(staff, django_user_model):
    client = client_for(staff)
    invite(client, username="ann")
    old = code_from_the_mail()
    browser = Client()
    assert open_link(browser, old).status_code == 303  # opened, not yet used
    ann = django_user_model.objects.get(username="ann")
    response = client.post(reverse("users:invite-again", args=[ann.pk]))
    assert response.status_code == 302
    new = code_from_the_mail()
    assert new != old and len(mail.outbox) == 2

    refused = set_password(old)
    assert refused.status_code == 400 and "This link is not valid" in text(refused)
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert browser.post(SET_PASSWORD, form).status_code == 400  # its grant was replaced too
    assert set_password(new).status_code == 302
    assert signs_in("ann", NEW_PASSWORD)


def test_a_link_that_was_not_made_here_is_refused(staff):
    invite(client_for(staff), username="ann")
    code = code_from_the_mail()
    pk, _, token = code.partition("-")
    forged = [
        "",
        "x",
        f"{pk}-{token[:-1]}0" if token[-1] != "0" else f"{pk}-{token[:-1]}1",
        f"{pk}zz-{token}",
        "1" * 20 + "-" + token,
        "zzzzzzzzzzzzzz-1-2",
        "٣-" + token,
        code + "\x00",
        code * 10,
    ]
    for bad in forged:
        response = Client().post(WELCOME, {"code": bad})
        assert response.status_code == 400, bad
        assert "This link is not valid" in text(response)


def test_the_password_page_without_an_opened_link_says_so():
    response = Client().get(SET_PASSWORD)
    assert response.status_code == 400
    assert "Open your invitation link first" in text(response)
    posted = Client().post(SET_PASSWORD, {"new_password1": "a", "new_password2": "a"})
    assert posted.status_code == 400


def test_the_password_must_pass_djangos_validators(staff, django_user_model):
    invite(client_for(staff), username="ann", email="ann@example.com")
    browser = Client()
    assert open_link(browser, code_from_the_mail()).status_code == 303
    for weak in ("short", "password123", "12345678901", "ann@example.com"):
        response = browser.post(SET_PASSWORD, {"new_password1": weak, "new_password2": weak})
        assert response.status_code == 400, weak
        assert 'class="error"' in response.content.decode()
    assert not django_user_model.objects.get(username="ann").has_usable_password()
    assert (
        browser.post(
            SET_PASSWORD, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        ).status_code
        == 302
    )


def test_empty_forms_say_what_is_missing(staff):
    response = client_for(staff).post(INVITE, {})
    assert response.status_code == 400 and "This field is required" in text(response)
    invite(client_for(staff), username="ann")
    browser = Client()
    open_link(browser, code_from_the_mail())
    response = browser.post(SET_PASSWORD, {})
    assert response.status_code == 400 and "This field is required" in text(response)


def test_a_deactivated_invitee_cannot_use_the_link(staff, django_user_model):
    client = client_for(staff)
    invite(client, username="ann")
    ann = django_user_model.objects.get(username="ann")
    client.post(reverse("users:active", args=[ann.pk]), {"active": "0"})
    refused = set_password(code_from_the_mail())
    assert refused.status_code == 403 and "This account is deactivated" in text(refused)


def test_a_duplicate_email_or_user_name_is_a_form_error(staff, owner, django_user_model):
    owner.email = "Owner@Example.com"
    owner.save()
    client = client_for(staff)
    users_before = django_user_model.objects.count()
    cases = [
        ({"email": "owner@example.COM"}, "exists already: &#x27;owner&#x27;"),
        ({"email": "new@example.com", "username": "OWNER"}, "is taken"),
        ({"email": "owner"}, "Enter a valid email address"),
        ({"email": "sam@example.com"}, "exists already"),  # the staff member's own
    ]
    for data, error in cases:
        response = invite(client, **data)
        assert response.status_code == 400, data
        assert error in response.content.decode(), (data, text(response)[-2000:])
    # the address as the user name: taken by an earlier user name
    django_user_model.objects.create_user("bo@example.com")
    response = invite(client, email="BO@example.com")
    assert response.status_code == 400 and "is taken" in response.content.decode()
    assert django_user_model.objects.count() == users_before + 1
    assert not mail.outbox


def test_without_a_user_name_the_address_is_one(staff, django_user_model):
    assert invite(client_for(staff), email="Cy@Example.COM").status_code == 302
    cy = django_user_model.objects.get(email="Cy@example.com")  # the domain in lower case
    assert cy.username == "Cy@example.com"
    long_local = "x" * 140 + "@example.com"
    response = invite(client_for(staff), email=long_local)
    assert response.status_code == 400 and "give one" in response.content.decode()


def test_line_breaks_and_odd_text_in_an_invitation_are_refused(staff, django_user_model):
    client = client_for(staff)
    before = django_user_model.objects.count()
    for data in (
        {"email": "ann@example.com\r\nBcc: all@example.com"},
        {"email": "ann@example.com\r\n"},
        {"email": "ann@example.com\n"},
        {"email": "ann@example.com", "first_name": "Ann\r\nX-Header: 1"},
        {"email": "ann@example.com", "last_name": "Lee\x00"},
        {"email": "ann@example.com", "username": "ann\nroot"},
        {"email": "ann@example.com", "username": "ann lee"},
        {"email": "ann@example.com", "first_name": "\u202eeerf"},
        {"email": "änn@exämple.com"},
        {"email": "a" * 300 + "@example.com"},
        {"email": "ann@example.com", "username": "u" * 151},
    ):
        response = invite(client, **data)
        assert response.status_code == 400, data
        assert 'class="error"' in response.content.decode(), data
    assert django_user_model.objects.count() == before
    assert not mail.outbox
    # Unicode that is valid goes through: an internationalised domain, a name in any script
    response = invite(client, email="zoë@xn--bcher-kva.example", first_name="Zoë", last_name="李")
    assert response.status_code == 400  # Django accepts only ASCII before the @
    response = invite(client, email="zoe@bücher.example", first_name="Zoë", last_name="李")
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["zoe@bücher.example"]
    assert mail.outbox[-1].message()["To"] == "zoe@xn--bcher-kva.example"


def test_a_mail_server_that_fails_leaves_a_pending_user_and_says_so(
    staff, django_user_model, settings, dead_url, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", int(dead_url.rsplit(":", 1)[1])
    caplog.set_level(logging.INFO)
    client = client_for(staff)
    response = invite(client, username="ann")
    assert response.status_code == 302
    page = client.get(LIST)
    assert "could not be sent" in text(page)
    assert django_user_model.objects.filter(username="ann").exists()
    assert "ConnectionRefusedError" in caplog.text
    assert "welcome" not in caplog.text


def test_no_token_or_password_is_stored_shown_or_logged(staff, caplog, django_user_model):
    caplog.set_level(logging.DEBUG)
    client = client_for(staff)
    invite(client, username="ann")
    code = code_from_the_mail()
    token = code.partition("-")[2]
    browser = Client()
    open_link(browser, code)
    browser.post(SET_PASSWORD, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    every_page = client.get(LIST).content.decode() + client.get(INVITE).content.decode()
    assert token not in every_page and NEW_PASSWORD not in every_page
    assert token not in caplog.text and NEW_PASSWORD not in caplog.text
    with db.cursor() as cursor:
        stored = []
        for table in ("accounts_invitation", "auth_user", "django_session"):
            cursor.execute(f"SELECT * FROM {table}")
            stored.append(repr(cursor.fetchall()))
    stored_text = "\n".join(stored)
    for session in Session.objects.all():
        stored_text += repr(session.get_decoded())
    assert token not in stored_text and NEW_PASSWORD not in stored_text
    assert django_user_model.objects.get(username="ann").password.startswith("md5$")


# --- deactivating, reactivating, staff ---------------------------------------------------------


def test_staff_cannot_deactivate_themselves_nor_drop_their_own_staff_flag(staff):
    client = client_for(staff)
    page = client.get(LIST).content.decode()
    assert reverse("users:active", args=[staff.pk]) not in page  # not offered
    assert reverse("users:staff", args=[staff.pk]) not in page
    response = client.post(reverse("users:active", args=[staff.pk]), {"active": "0"})
    assert response.status_code == 303
    assert "You cannot deactivate yourself" in text(client.get(LIST))
    response = client.post(reverse("users:staff", args=[staff.pk]), {"staff": "0"})
    assert response.status_code == 303
    assert "You cannot remove your own staff flag" in text(client.get(LIST))
    staff.refresh_from_db()
    assert staff.is_active and staff.is_staff


def test_only_a_superuser_changes_a_superuser(staff, superuser, django_user_model):
    other_root = django_user_model.objects.create_superuser("root2", password="pw-root2-123")
    client = client_for(staff)
    page = client.get(LIST).content.decode()
    for url in ("users:active", "users:staff"):
        assert reverse(url, args=[superuser.pk]) not in page
    for url, data in (("users:active", {"active": "0"}), ("users:staff", {"staff": "0"})):
        response = client.post(reverse(url, args=[superuser.pk]), data)
        assert response.status_code == 303
        assert "Only a superuser may change the superuser" in text(client.get(LIST))
    superuser.refresh_from_db()
    assert superuser.is_active and superuser.is_staff
    # a superuser may, on another superuser; on themselves, not
    root = client_for(superuser)
    response = root.post(reverse("users:active", args=[other_root.pk]), {"active": "0"})
    assert response.status_code == 302
    other_root.refresh_from_db()
    assert not other_root.is_active
    response = root.post(reverse("users:active", args=[superuser.pk]), {"active": "0"})
    assert response.status_code == 303
    # and a superuser changes staff too
    response = root.post(reverse("users:staff", args=[staff.pk]), {"staff": "0"})
    assert response.status_code == 302
    staff.refresh_from_db()
    assert not staff.is_staff


def test_deactivating_signs_out_everywhere_and_refuses_api_tokens_at_once(staff, owner):
    _, key = ApiToken.issue(owner, "ci")
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    laptop, phone = client_for(owner), client_for(owner)
    connections_page = reverse("connections:list")
    assert laptop.get(connections_page).status_code == 200
    assert api.get("/api/connections/").status_code == 200
    other_session = client_for(staff)

    response = client_for(staff).post(reverse("users:active", args=[owner.pk]), {"active": "0"})
    assert response.status_code == 302

    for browser in (laptop, phone):
        signed_out = browser.get(connections_page)
        assert signed_out.status_code == 302 and signed_out["Location"].startswith(LOGIN)
    assert api.get("/api/connections/").status_code == 401
    sessions = [s.get_decoded().get(SESSION_KEY) for s in Session.objects.all()]
    assert str(owner.pk) not in sessions  # ended, not only refused
    assert other_session.get(LIST).status_code == 200  # nobody else's

    # reactivated: the token works again, the old sessions stay ended
    response = client_for(staff).post(reverse("users:active", args=[owner.pk]), {"active": "1"})
    assert response.status_code == 302
    assert api.get("/api/connections/").status_code == 200
    assert laptop.get(connections_page).status_code == 302
    assert signs_in("owner", "pw-owner-123")


def test_make_staff_and_remove_staff(staff, owner):
    client = client_for(staff)
    assert client.post(reverse("users:staff", args=[owner.pk]), {"staff": "1"}).status_code == 302
    owner.refresh_from_db()
    assert owner.is_staff
    assert client_for(owner).get(LIST).status_code == 200
    assert client.post(reverse("users:staff", args=[owner.pk]), {"staff": "0"}).status_code == 302
    owner.refresh_from_db()
    assert not owner.is_staff
    assert client_for(owner).get(LIST).status_code == 403
    # again: nothing to do, said so
    response = client.post(reverse("users:staff", args=[owner.pk]), {"staff": "0"})
    assert response.status_code == 303
    assert "is not staff" in text(client.get(LIST))


def test_destructive_actions_ask_first_in_the_one_dialog(staff, owner, django_user_model):
    client = client_for(staff)
    invite(client, username="ann")
    page = client.get(LIST).content.decode()
    forms = re.findall(r'<form method="post" action="([^"]+)".*?</form>', page, re.S)
    assert forms
    for action in (
        reverse("users:active", args=[owner.pk]),
        reverse("users:staff", args=[owner.pk]),
        reverse("users:invite-again", args=[django_user_model.objects.get(username="ann").pk]),
    ):
        form = re.search(rf'action="{re.escape(action)}".*?</form>', page, re.S).group(0)
        assert "data-confirm=" in form and "csrfmiddlewaretoken" in form, form


def test_every_post_needs_the_csrf_token(staff, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    for url, data in (
        (INVITE, {"email": "ann@example.com"}),
        (reverse("users:active", args=[owner.pk]), {"active": "0"}),
        (reverse("users:staff", args=[owner.pk]), {"staff": "1"}),
        (reverse("users:invite-again", args=[owner.pk]), {}),
        (WELCOME, {"code": "x"}),
        (SET_PASSWORD, {}),
    ):
        assert client.post(url, data).status_code == 403, url
    owner.refresh_from_db()
    assert owner.is_active and not owner.is_staff


# --- bad input ---------------------------------------------------------------------------------


def test_bad_ids_and_values_are_4xx_never_500(staff, owner):
    client = client_for(staff, raise_request_exception=False)
    unknown = owner.pk + 10_000
    for url in ("users:active", "users:staff", "users:invite-again"):
        assert (
            client.post(reverse(url, args=[unknown]), {"active": "0", "staff": "0"}).status_code
            == 404
        )
        for bad_id in ("1" * 20, "٣", "0x1", "-1"):
            path = reverse(url, args=[1]).replace("/1/", f"/{bad_id}/")
            assert client.post(path, {"active": "0", "staff": "0"}).status_code == 404, path
    for value in ("", "2", "yes", "1\r\n", "\x00", "١", "1" * 20):
        for url, name in (("users:active", "active"), ("users:staff", "staff")):
            response = client.post(reverse(url, args=[owner.pk]), {name: value})
            assert response.status_code == 400, (url, value)
            assert "is 1 or 0 here" in text(response)
    assert client.get(reverse("users:active", args=[owner.pk])).status_code == 405
    owner.refresh_from_db()
    assert owner.is_active and not owner.is_staff


def test_search_finds_by_name_or_email_and_survives_odd_text(staff, django_user_model):
    django_user_model.objects.create_user(
        "ann", email="ann@corp.example", first_name="Ann", last_name="Lee"
    )
    django_user_model.objects.create_user("bob", email="bob@home.example", first_name="Bob")
    client = client_for(staff, raise_request_exception=False)

    def found(query):
        response = client.get(LIST, {"q": query})
        assert response.status_code == 200, query
        return {row.username for row in response.context["page"]}

    assert found("ann lee") == {"ann"}
    assert found("CORP") == {"ann"}
    assert found("bob") == {"bob"}
    assert found("home.example") == {"bob"}
    assert found("nobody") == set()
    for odd in ("\x00", "a\x00b", "\r\n", "%", "_", "'; DROP TABLE auth_user; --", "李" * 500):
        found(odd)
    assert client.get(LIST, {"page": "9" * 30}).status_code == 200


def test_an_action_keeps_the_search(staff, owner):
    response = client_for(staff).post(
        reverse("users:staff", args=[owner.pk]), {"staff": "1", "q": "own"}
    )
    assert response["Location"] == f"{LIST}?q=own"


def test_the_list_costs_the_same_queries_whatever_its_size(
    staff, django_user_model, django_assert_max_num_queries
):
    client = client_for(staff)
    client.get(LIST)
    for n in range(30):
        user = django_user_model.objects.create_user(f"user-{n}", email=f"u{n}@example.com")
        if n % 2:
            Invitation.objects.create(user=user, invited_by=staff, issued_at=timezone.now())
    with django_assert_max_num_queries(8):
        response = client.get(LIST)
    assert "user-29" in response.content.decode()
