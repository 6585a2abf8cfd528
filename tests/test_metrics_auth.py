"""/metrics answers the METRICS_TOKEN as a bearer token, or a signed-in active staff user;
anyone else gets 401 with a Bearer challenge and nothing of the metrics."""

import pytest

from connections.choices import Status

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-5f1c0e9a7b"


@pytest.fixture
def with_token(settings):
    settings.METRICS_TOKEN = TOKEN


@pytest.fixture(autouse=True)
def a_connection(make_connection):
    make_connection(Status.CONNECTED, kind="prometheus")


def refused(response) -> bool:
    return (
        response.status_code == 401
        and response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        and "meshplay_" not in response.content.decode()
    )


def counted(response) -> bool:
    text = response.content.decode()
    return response.status_code == 200 and (
        'meshplay_connections{kind="prometheus",state="connected"} 1.0' in text
    )


@pytest.mark.parametrize("token_set", [False, True])
def test_anonymous_is_refused(client, settings, token_set):
    settings.METRICS_TOKEN = TOKEN if token_set else ""
    response = client.get("/metrics")
    assert refused(response) and response.content == b""


@pytest.mark.usefixtures("with_token")
def test_a_signed_in_user_who_is_not_staff_is_refused(client, owner):
    client.force_login(owner)
    assert refused(client.get("/metrics"))


@pytest.mark.usefixtures("with_token")
@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Token {TOKEN}",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
def test_a_wrong_token_is_refused(client, header):
    assert refused(client.get("/metrics", HTTP_AUTHORIZATION=header))


def test_no_token_is_accepted_while_none_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert refused(client.get("/metrics", HTTP_AUTHORIZATION="Bearer "))
    assert refused(client.get("/metrics", HTTP_AUTHORIZATION="Bearer"))


@pytest.mark.usefixtures("with_token")
def test_the_right_token_is_answered(client):
    assert counted(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert counted(client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}"))


@pytest.mark.parametrize("token_set", [False, True])
def test_a_staff_user_is_answered(client, settings, django_user_model, token_set):
    settings.METRICS_TOKEN = TOKEN if token_set else ""
    staff = django_user_model.objects.create_user("ops", password="pw-ops-2026", is_staff=True)
    client.force_login(staff)
    assert counted(client.get("/metrics"))
    staff.is_active = False
    staff.save()
    assert refused(client.get("/metrics"))
