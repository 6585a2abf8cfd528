"""The notifications API: the visibility rule (404 for what is not seen, 403 for what is seen
but not changeable), write-only destinations and a signing secret shown once, bad payloads as
400 naming the field, the events a caller may see, and the webhook body in the OpenAPI
document."""

import json

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from connections import hooks
from connections.choices import Status
from connections.models import Connection, ConnectionTransition
from environments.models import Environment, EnvironmentMembership
from notifications import channels
from notifications.models import Channel, Delivery, Event, Rule
from tests.notifying import down, run

pytestmark = pytest.mark.django_db

CHANNELS = "/api/notifications/channels/"
RULES = "/api/notifications/rules/"
EVENTS = "/api/notifications/events/"
DELIVERIES = "/api/notifications/deliveries/"
HOOK_PATH = "hook-PATH-never-returned-4f1c"
HOOK = f"http://127.0.0.1:9/{HOOK_PATH}?token=QUERY-never-returned-88"


def client_for(user, token: bool = True) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user, 'tests')[1]}")
    else:
        client.force_login(user)
    return client


@pytest.fixture
def people(django_user_model, owner, stranger):
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    editor = django_user_model.objects.create_user("editor", password="pw-editor-123")
    prod = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=prod, user=viewer, role="viewer")
    EnvironmentMembership.objects.create(environment=prod, user=editor, role="editor")
    return {"owner": owner, "stranger": stranger, "viewer": viewer, "editor": editor, "prod": prod}


@pytest.fixture
def own_channel(owner):
    channel, _ = channels.create_channel(owner, name="mine", kind="webhook", destination=HOOK)
    return channel


@pytest.fixture
def env_channel(people):
    channel, _ = channels.create_channel(
        people["owner"],
        name="prod-hook",
        kind="webhook",
        destination=HOOK,
        environment=people["prod"],
    )
    return channel


def assert_no_secret(response, *secrets):
    for secret in (HOOK_PATH, "QUERY-never-returned", *secrets):
        assert secret.encode() not in response.content, response.content[:300]


def error_fields(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()["error"]
    assert body["code"] == "invalid" and body["message"]
    return body["fields"]


# --- visibility ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["stranger", "viewer", "editor"])
def test_another_users_own_channel_is_not_found(people, own_channel, who):
    api = client_for(people[who])
    assert api.get(CHANNELS).json()["count"] == 0
    url = f"{CHANNELS}{own_channel.pk}/"
    assert api.get(url).status_code == 404
    assert api.patch(url, {"name": "hijacked"}, format="json").status_code == 404
    assert api.put(url, {"name": "x", "kind": "webhook"}, format="json").status_code == 404
    assert api.delete(url).status_code == 404
    assert api.post(f"{url}test/").status_code == 404
    assert api.post(f"{url}rotate-secret/").status_code == 404
    assert api.get(RULES).json()["count"] == 0
    rule = own_channel.rules.get()
    assert api.get(f"{RULES}{rule.pk}/").status_code == 404
    assert api.delete(f"{RULES}{rule.pk}/").status_code == 404
    own_channel.refresh_from_db()
    assert own_channel.name == "mine" and Rule.objects.filter(pk=rule.pk).exists()


def test_an_environment_viewer_sees_its_channel_but_cannot_change_it(people, env_channel):
    api = client_for(people["viewer"])
    url = f"{CHANNELS}{env_channel.pk}/"
    listed = api.get(CHANNELS).json()
    assert [c["id"] for c in listed["results"]] == [env_channel.pk]
    assert api.get(url).json()["environment"] == people["prod"].pk
    rule = env_channel.rules.get()
    for response in (
        api.patch(url, {"name": "hijacked"}, format="json"),
        api.put(url, {"name": "hijacked", "kind": "webhook"}, format="json"),
        api.delete(url),
        api.post(f"{url}test/"),
        api.post(f"{url}rotate-secret/"),
        api.patch(f"{RULES}{rule.pk}/", {"categories": ["auth"]}, format="json"),
        api.delete(f"{RULES}{rule.pk}/"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"
    assert api.get(f"{RULES}{rule.pk}/").status_code == 200
    assert not Delivery.objects.exists()
    env_channel.refresh_from_db()
    assert env_channel.name == "prod-hook" and Channel.objects.filter(pk=env_channel.pk).exists()
    assert env_channel.rules.count() == 1
    # the viewer's rule on a channel it cannot manage: "does not exist", not created
    assert "channel" in error_fields(api.post(RULES, {"channel": env_channel.pk}, format="json"))


def test_an_environment_editor_changes_its_channel(people, env_channel):
    api = client_for(people["editor"])
    url = f"{CHANNELS}{env_channel.pk}/"
    changed = api.patch(url, {"name": "renamed", "cooldown": 60}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["name"] == "renamed" and changed.json()["cooldown"] == 60
    assert_no_secret(changed)


def test_the_owner_manages_channels_and_rules(people):
    owner = people["owner"]
    api = client_for(owner)
    created = api.post(
        CHANNELS,
        {"name": "ops", "kind": "email", "destination": "ops@example.org, b@example.org"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["signing_secret"] == "" and body["destination_hint"].startswith("ops@")
    channel = Channel.objects.get(pk=body["id"])
    assert channel.config == {"to": ["ops@example.org", "b@example.org"]}
    rule = api.post(
        RULES,
        {"channel": channel.pk, "environments": [people["prod"].pk], "categories": ["recovery"]},
        format="json",
    )
    assert rule.status_code == 201, rule.content
    assert rule.json()["environments"] == [people["prod"].pk]
    patched = api.patch(f"{RULES}{rule.json()['id']}/", {"kinds": ["http"]}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["categories"] == ["recovery"]  # kept
    assert patched.json()["environments"] == [people["prod"].pk]
    assert patched.json()["kinds"] == ["http"]
    listed = api.get(RULES, {"channel": channel.pk}).json()
    assert listed["count"] == 2  # the channel's first rule and this one
    assert api.delete(f"{RULES}{rule.json()['id']}/").status_code == 204
    assert api.delete(f"{CHANNELS}{channel.pk}/").status_code == 204
    assert not Channel.objects.filter(pk=channel.pk).exists()


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [True, False])
def test_the_destination_never_comes_back_and_the_secret_once(owner, token):
    api = client_for(owner, token=token)
    created = api.post(
        CHANNELS,
        {"name": "hook", "kind": "webhook", "destination": HOOK, "group_window": 5},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert_no_secret(created)
    body = created.json()
    secret = body["signing_secret"]
    assert len(secret) >= 32 and body["destination_hint"] == "http://127.0.0.1:9/…"
    assert "destination" not in body and "config" not in json.dumps(body)
    channel = Channel.objects.get(pk=body["id"])
    assert channel.config["secret"] == secret and channel.config["url"] == HOOK
    url = f"{CHANNELS}{channel.pk}/"
    for response in (api.get(CHANNELS), api.get(url), api.get(RULES)):
        assert response.status_code == 200
        assert_no_secret(response, secret)
        assert "signing_secret" not in response.json()
    # a change without a destination keeps it; the answer shows neither
    renamed = api.patch(url, {"name": "hook2"}, format="json")
    assert renamed.status_code == 200
    assert_no_secret(renamed, secret)
    channel.refresh_from_db()
    assert channel.config["url"] == HOOK and channel.config["secret"] == secret
    # a new destination replaces the URL, the secret stays
    moved = api.patch(url, {"destination": "http://127.0.0.1:10/other-PATH-x"}, format="json")
    assert moved.status_code == 200
    assert b"other-PATH-x" not in moved.content
    channel.refresh_from_db()
    assert channel.config["secret"] == secret and channel.destination_hint.endswith(":10/…")
    # rotation: a new secret, once
    rotated = api.post(f"{url}rotate-secret/")
    assert rotated.status_code == 200
    new = rotated.json()["signing_secret"]
    assert new != secret
    channel.refresh_from_db()
    assert channel.config["secret"] == new
    assert_no_secret(api.get(url), secret, new)


def test_a_test_send_answers_with_the_attempt(owner, dead_url):
    api = client_for(owner)
    created = api.post(
        CHANNELS,
        {"name": "down", "kind": "webhook", "destination": f"{dead_url}/{HOOK_PATH}"},
        format="json",
    )
    assert created.status_code == 201
    secret = created.json()["signing_secret"]
    result = api.post(f"{CHANNELS}{created.json()['id']}/test/")
    assert result.status_code == 200, result.content
    body = result.json()
    assert body["ok"] is False and body["error"] and body["status_code"] is None
    assert_no_secret(result, secret)
    log = api.get(DELIVERIES, {"channel": created.json()["id"]})
    assert log.json()["count"] == 1 and log.json()["results"][0]["message_kind"] == "test"
    assert_no_secret(log, secret)
    assert api.get(DELIVERIES, {"ok": "true"}).json()["count"] == 0
    assert api.get(DELIVERIES, {"ok": "false"}).json()["count"] == 1


def test_an_apprise_channel_shows_only_its_scheme(owner):
    api = client_for(owner)
    created = api.post(
        CHANNELS,
        {"name": "ntfy", "kind": "apprise", "destination": f"json://127.0.0.1:9/{HOOK_PATH}"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["destination_hint"] == "json://…"
    assert_no_secret(created)
    assert_no_secret(api.get(f"{CHANNELS}{created.json()['id']}/"))


def test_deliveries_are_those_of_visible_channels(people, own_channel, env_channel):
    from notifications.models import Message

    for channel in (own_channel, env_channel):
        message = Message.objects.create(
            channel=channel, key=f"k-{channel.pk}", kind="test", title="t", body="b"
        )
        Delivery.objects.create(message=message, channel=channel, attempt=1, ok=True)
    assert client_for(people["owner"]).get(DELIVERIES).json()["count"] == 2
    assert client_for(people["viewer"]).get(DELIVERIES).json()["count"] == 1
    assert client_for(people["stranger"]).get(DELIVERIES).json()["count"] == 0
    other = Delivery.objects.get(channel=own_channel)
    assert client_for(people["viewer"]).get(f"{DELIVERIES}{other.pk}/").status_code == 404


# --- bad payloads -------------------------------------------------------------------------------

BAD_CHANNELS = [
    ({"name": "x", "kind": "webhook", "destination": 123}, "destination"),
    ({"name": "x", "kind": "webhook", "destination": ["http://127.0.0.1:9/"]}, "destination"),
    ({"name": "x", "kind": "webhook"}, "destination"),
    ({"name": "x", "kind": "x", "destination": HOOK}, "kind"),
    ({"name": "x", "kind": 7, "destination": HOOK}, "kind"),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "group_window": "abc"}, "group_window"),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "group_window": -1}, "group_window"),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "cooldown": 2**80}, "cooldown"),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "enabled": "maybe"}, "enabled"),
    ({"name": "", "kind": "webhook", "destination": HOOK}, "name"),
    ({"name": "x" * 201, "kind": "webhook", "destination": HOOK}, "name"),
    (
        {"name": "x", "kind": "webhook", "destination": "http://169.254.169.254/latest"},
        "destination",
    ),
    ({"name": "x", "kind": "webhook", "destination": "http://[fe80::1]/x"}, "destination"),
    ({"name": "x", "kind": "webhook", "destination": "file:///etc/passwd"}, "destination"),
    ({"name": "x", "kind": "webhook", "destination": "ftp://127.0.0.1/x"}, "destination"),
    ({"name": "x", "kind": "webhook", "destination": "http://10.0.0.1/x"}, "destination"),
    ({"name": "x", "kind": "email", "destination": "not an address"}, "destination"),
    ({"name": "x", "kind": "apprise", "destination": "syslog://127.0.0.1"}, "destination"),
    ({"name": "x", "kind": "apprise", "destination": "windows://"}, "destination"),
    ({"name": "x", "kind": "apprise", "destination": "json://"}, "destination"),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "environment": "prod"}, "environment"),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "environment": 10**30}, "environment"),
    (
        {"name": "x", "kind": "webhook", "destination": HOOK, "rule": {"categories": ["nope"]}},
        "rule",
    ),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "rule": {"kinds": ["nope"]}}, "rule"),
    ({"name": "x", "kind": "webhook", "destination": HOOK, "rule": "all"}, "rule"),
]


@pytest.mark.parametrize(("payload", "field"), BAD_CHANNELS, ids=[f for _, f in BAD_CHANNELS])
def test_bad_channels_are_400_naming_the_field(owner, payload, field):
    response = client_for(owner).post(CHANNELS, payload, format="json")
    fields = error_fields(response)
    assert field in fields or field in json.dumps(fields), fields
    assert not Channel.objects.exists()
    destination = payload.get("destination")
    if isinstance(destination, str) and len(destination) > 12:
        assert destination.encode() not in response.content  # the value is never repeated


def test_bad_updates_are_400(owner, own_channel):
    api = client_for(owner)
    url = f"{CHANNELS}{own_channel.pk}/"
    assert "kind" in error_fields(api.patch(url, {"kind": "email"}, format="json"))
    assert "group_window" in error_fields(api.patch(url, {"group_window": "abc"}, format="json"))
    assert "destination" in error_fields(
        api.patch(url, {"destination": "http://169.254.169.254/"}, format="json")
    )
    assert "destination" in error_fields(api.patch(url, {"destination": 5}, format="json"))
    assert "rule" in error_fields(api.patch(url, {"rule": {}}, format="json"))
    own_channel.refresh_from_db()
    assert own_channel.config["url"] == HOOK


def test_rotating_a_non_webhook_is_400(owner):
    channel, _ = channels.create_channel(owner, name="m", kind="email", destination="a@b.org")
    assert "kind" in error_fields(client_for(owner).post(f"{CHANNELS}{channel.pk}/rotate-secret/"))


def test_bad_rules_are_400(people, own_channel, make_connection):
    api = client_for(people["owner"])
    hidden = make_connection(owner=people["stranger"])
    hidden_env = Environment.objects.create(name="theirs", owner=people["stranger"])
    base = {"channel": own_channel.pk}
    for payload, field in [
        ({**base, "connections": [hidden.pk]}, "connections"),
        ({**base, "environments": [hidden_env.pk]}, "environments"),
        ({**base, "connections": ["x"]}, "connections"),
        ({**base, "connections": 5}, "connections"),
        ({**base, "connections": list(range(1, 1000))}, "connections"),
        ({**base, "categories": ["nope"]}, "categories"),
        ({**base, "categories": "disconnected"}, "categories"),
        ({**base, "kinds": ["nope"]}, "kinds"),
        ({**base, "kinds": [1]}, "kinds"),
        ({"channel": 10**30}, "channel"),
        ({"channel": "abc"}, "channel"),
        ({}, "channel"),
    ]:
        response = api.post(RULES, payload, format="json")
        assert field in error_fields(response), (payload, response.content)
        assert b"stranger" not in response.content and b"theirs" not in response.content
    assert own_channel.rules.count() == 1
    # the hidden connection and a missing one get the same answer
    missing = api.post(RULES, {**base, "connections": [10**12]}, format="json")
    hidden_answer = api.post(RULES, {**base, "connections": [hidden.pk]}, format="json")
    assert error_fields(missing)["connections"] == [
        m.replace(str(hidden.pk), str(10**12)) for m in error_fields(hidden_answer)["connections"]
    ]


def test_an_environment_channels_rule_stays_in_its_environment(
    people, env_channel, make_connection
):
    api = client_for(people["owner"])
    elsewhere = make_connection()  # the owner's, not in prod
    response = api.post(
        RULES, {"channel": env_channel.pk, "connections": [elsewhere.pk]}, format="json"
    )
    assert "connections" in error_fields(response)


def test_only_editors_make_environment_channels(people):
    payload = {
        "name": "x",
        "kind": "webhook",
        "destination": HOOK,
        "environment": people["prod"].pk,
    }
    assert "environment" in error_fields(
        client_for(people["viewer"]).post(CHANNELS, payload, format="json")
    )
    assert "environment" in error_fields(
        client_for(people["stranger"]).post(CHANNELS, payload, format="json")
    )
    created = client_for(people["editor"]).post(CHANNELS, payload, format="json")
    assert created.status_code == 201 and created.json()["owner"] == "editor"


# --- events -------------------------------------------------------------------------------------


def test_events_are_those_of_visible_connections(people, make_connection):
    owner, prod = people["owner"], people["prod"]
    shared = make_connection(name="shared-conn")
    prod.connections.add(shared)
    private = make_connection(name="private-conn")
    for connection, before, to in (
        (shared, "connected", "disconnected"),
        (private, "registered", "not_found"),
        (shared, "disconnected", "connected"),
    ):
        # a transition's row and its hooks, as lifecycle.transition writes them
        hooks.transitioned(
            ConnectionTransition.objects.create(
                connection=connection, from_status=before, to_status=to, trigger="probe"
            )
        )
    assert Event.objects.count() == 3
    mine = client_for(owner).get(EVENTS).json()
    assert mine["count"] == 3
    first = mine["results"][0]
    assert {"id", "connection", "from", "to", "trigger", "category", "reason", "created_at"} <= set(
        first
    )
    viewer = client_for(people["viewer"])
    seen = viewer.get(EVENTS).json()
    assert seen["count"] == 2 and b"private-conn" not in viewer.get(EVENTS).content
    assert {e["connection"]["id"] for e in seen["results"]} == {shared.pk}
    hidden = Event.objects.get(connection=private)
    assert viewer.get(f"{EVENTS}{hidden.pk}/").status_code == 404
    stranger = client_for(people["stranger"])
    assert stranger.get(EVENTS).json()["count"] == 0
    # filters
    api = client_for(owner)
    assert api.get(EVENTS, {"connection": private.pk}).json()["count"] == 1
    assert api.get(EVENTS, {"category": "recovery"}).json()["count"] == 1
    assert api.get(EVENTS, {"since": "2999-01-01T00:00:00Z"}).json()["count"] == 0
    for bad in (
        {"category": "nope"},
        {"since": "yesterday"},
        {"connection": "x"},
        {"connection": str(10**30)},
        {"since": "0001-01-01T00:00:00+05:00"},
    ):
        assert api.get(EVENTS, bad).status_code == 400, bad
    # an offset PostgreSQL would refuse is turned into UTC first
    assert api.get(EVENTS, {"since": "2056-09-02T11:05:08.5-16:25"}).json()["count"] == 0
    assert api.get(DELIVERIES, {"ok": "perhaps"}).status_code == 400
    assert api.get(f"{EVENTS}{'9' * 30}/").status_code == 404


def test_anonymous_is_401():
    for url in (CHANNELS, RULES, EVENTS, DELIVERIES):
        assert APIClient().get(url).status_code == 401


# --- the OpenAPI document -----------------------------------------------------------------------


def test_the_schema_documents_the_webhook_body(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
    schema = yaml.safe_load((tmp_path / "s.yaml").read_text())
    payload = schema["components"]["schemas"]["WebhookPayload"]
    assert set(payload["properties"]) == {
        "schema",
        "id",
        "kind",
        "title",
        "text",
        "sent_at",
        "attempt",
        "channel",
        "events",
        "total_events",
        "dependents",
    }
    event = schema["components"]["schemas"]["WebhookEvent"]
    assert set(event["properties"]) == {
        "id",
        "connection",
        "from",
        "to",
        "trigger",
        "category",
        "reason",
        "at",
    }
    callback = schema["paths"]["/api/notifications/channels/"]["post"]["callbacks"]
    operation = callback["webhookMessage"]["{$request.body#/destination}"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookPayload"
    }
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"X-Meshplay-Signature", "X-Meshplay-Idempotency-Key"}
    for path in (
        "channels/{id}/test/",
        "channels/{id}/rotate-secret/",
        "rules/{id}/",
        "events/",
        "deliveries/",
    ):
        assert f"/api/notifications/{path}" in schema["paths"]


def test_the_webhook_body_matches_its_documented_shape(owner, make_connection):
    """messages.webhook_body produces exactly the fields WebhookPayloadSerializer documents."""
    from django.utils import timezone

    from notifications.messages import event_message, webhook_body
    from notifications.serializers import WebhookEventSerializer, WebhookPayloadSerializer

    channel, _ = channels.create_channel(owner, name="h", kind="webhook", destination=HOOK)
    connection = make_connection()
    hooks.transitioned(
        ConnectionTransition.objects.create(
            connection=connection,
            from_status="connected",
            to_status="disconnected",
            trigger="probe",
        )
    )

    event = Event.objects.get()
    message = event_message(channel, event, connection, "failure", timezone.now())
    body = json.loads(json.dumps(webhook_body(message, timezone.now())))
    assert set(body) == set(WebhookPayloadSerializer().fields)
    assert set(body["events"][0]) == set(WebhookEventSerializer().fields)
    checked = WebhookPayloadSerializer(data=body)
    assert checked.is_valid(), checked.errors


# --- the admin ----------------------------------------------------------------------------------


def test_the_admin_keeps_the_destination_write_only(django_user_model, client, people):
    admin_user = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client.force_login(admin_user)
    add = "/admin/notifications/channel/add/"
    assert client.get(add).status_code == 200
    knobs = {
        "group_window": 10,
        "group_threshold": 3,
        "cooldown": 300,
        "remind_every_hours": 0,
        "rate_per_hour": 60,
        "enabled": "on",
    }
    refused = client.post(
        add, {"name": "a", "kind": "webhook", "destination": "http://169.254.169.254/", **knobs}
    )
    assert refused.status_code == 200 and b"cannot be used" in refused.content
    assert not Channel.objects.exists()
    made = client.post(add, {"name": "a", "kind": "webhook", "destination": HOOK, **knobs})
    assert made.status_code == 302, made.content[:2000]
    channel = Channel.objects.get()
    assert channel.config["url"] == HOOK and channel.owner == admin_user
    assert channel.rules.count() == 1
    secret = channel.config["secret"]
    change = f"/admin/notifications/channel/{channel.pk}/change/"
    page = client.get(change)
    assert page.status_code == 200 and b"127.0.0.1:9/" in page.content  # the hint
    assert_no_secret(page, secret)
    assert b"config_encrypted" not in page.content
    assert_no_secret(client.get("/admin/notifications/channel/"), secret)
    kept = client.post(change, {"name": "b", "destination": "", **knobs})
    assert kept.status_code == 302, kept.content[:2000]
    channel.refresh_from_db()
    assert channel.name == "b" and channel.config["url"] == HOOK
    # a rule through save_rule (dry-run in the form): an environment's channel hears only it
    outside = Connection.objects.create(
        name="outside", kind="http", url="http://127.0.0.1:1/t", owner=people["owner"]
    )
    prod_channel, _ = channels.create_channel(
        people["owner"], name="p", kind="webhook", destination=HOOK, environment=people["prod"]
    )
    rule_add = "/admin/notifications/rule/add/"
    refused = client.post(rule_add, {"channel": prod_channel.pk, "connections": [outside.pk]})
    assert refused.status_code == 200 and b"Choose connections" in refused.content
    assert prod_channel.rules.count() == 1
    ok = client.post(rule_add, {"channel": channel.pk, "categories": ["auth"]})
    assert ok.status_code == 302, ok.content[:2000]
    assert Rule.objects.filter(channel=channel, categories=["auth"]).exists()
    for model in ("event", "message", "delivery"):
        assert client.get(f"/admin/notifications/{model}/").status_code == 200


def test_staff_see_in_the_admin_what_the_rule_lets_them(django_user_model, client, people):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("staffer", password="pw-s-123", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="notifications"))
    channel, _ = channels.create_channel(
        people["owner"], name="o", kind="webhook", destination=HOOK
    )
    client.force_login(staff)
    page = client.get(f"/admin/notifications/channel/{channel.pk}/change/")
    assert page.status_code == 200  # staff see all (Channel.objects.restrict)
    assert_no_secret(page, channel.config["secret"])


# --- issue 13's review: bad values, hostile members ---------------------------------------------


CASES = [
    {"group_window": "abc"},
    {"group_window": 10**20},
    {"rate_per_hour": 0},
    {"rate_per_hour": 10**20},
    {"cooldown": -1},
    {"group_threshold": 1.5},
    {"name": "a\x00b"},
    {"name": "x" * 1000},
    {"remind_every_hours": "NaN"},
    {"enabled": "maybe"},
    {"environment": 10**30},
    {"rule": {"kinds": ["http"], "categories": ["nope"]}},
    {"rule": {"connections": [10**30]}},
    {"rule": {"connections": ["abc"]}},
    {"rule": "x"},
    {"destination": "http://[::ffff:169.254.169.254]/x"},
    {"destination": "http://[fe80::1%25eth0]/x"},
    {"destination": "json://[::ffff:a9fe:a9fe]/"},
]


@pytest.mark.parametrize("extra", CASES, ids=[str(c)[:40] for c in CASES])
def test_create_bad_values_are_400(owner, receiver, extra):
    api = APIClient()
    api.raise_request_exception = False
    api.force_login(owner)
    body = {"name": "n", "kind": "webhook", "destination": receiver.url, **extra}
    if "json://" in str(extra.get("destination", "")):
        body["kind"] = "apprise"
    answer = api.post("/api/notifications/channels/", body, format="json")
    assert answer.status_code == 400


@pytest.mark.parametrize("extra", CASES[:10], ids=[str(c)[:40] for c in CASES[:10]])
def test_update_bad_values_are_400(owner, receiver, extra):
    api = APIClient()
    api.raise_request_exception = False
    api.force_login(owner)
    created = api.post(
        "/api/notifications/channels/",
        {"name": "n", "kind": "webhook", "destination": receiver.url},
        format="json",
    )
    answer = api.patch(f"/api/notifications/channels/{created.json()['id']}/", extra, format="json")
    assert answer.status_code == 400, (answer.status_code, answer.content[:200])


# ------------------------------------------------------------------------------------------
# An editor of an environment turns that environment's channel (created by the environment's
# owner) into a personal channel: it keeps owner=<the environment's owner>, so it now hears every
# connection the environment's OWNER may see (all of them, if staff), and the editor chose its
# destination. channels.update_channel only checks the NEW environment (None passes).


def test_an_editor_cannot_detach_an_environments_channel(
    django_user_model, make_connection, receiver
):
    admin = django_user_model.objects.create_user("admin", password="x", is_staff=True)
    editor = django_user_model.objects.create_user("ed", password="x")
    other = django_user_model.objects.create_user("other", password="x")
    env = Environment.objects.create(name="prod", owner=admin)
    EnvironmentMembership.objects.create(environment=env, user=editor, role="editor")
    in_env = make_connection(Status.CONNECTED, managed=True, owner=admin, name="in-env")
    env.connections.add(in_env)
    secret_conn = make_connection(
        Status.CONNECTED, managed=True, owner=other, name="payroll-db-not-in-prod"
    )
    channel, _ = channels.create_channel(
        admin,
        name="prod alerts",
        kind="webhook",
        destination="https://example.com/hook",
        environment=env,
        group_window=0,
    )
    Event.objects.update(routed_at=timezone.now())

    api = APIClient()
    api.force_login(editor)
    api.raise_request_exception = False
    answer = api.patch(
        f"/api/notifications/channels/{channel.pk}/",
        {"environment": None, "destination": receiver.url},
        format="json",
    )
    assert answer.status_code == 400
    assert "environment" in answer.json()["error"]["fields"]
    channel.refresh_from_db()
    assert channel.environment_id == env.pk and "example.com" in channel.destination_hint
    down(secret_conn)  # a connection the editor may NOT see, outside the environment
    run()
    names = [e["connection"]["name"] for r in receiver.received for e in r["body"]["events"]]
    assert "payroll-db-not-in-prod" not in names, f"editor's receiver heard {names}"
