"""Bad input always gets a clear 4xx, never a 500, and changes nothing.

Ids wider than 64 bits in URLs, in JSON bodies and in form fields; ids that are not numbers in
the environment forms; JSON nested 10,000 deep; bodies that are not a JSON object; strings a
database cannot store. The JSON parser's depth scan is also checked here against a parser and
a reference scan, and timed on 512 KiB bodies.
"""

from __future__ import annotations

import contextlib
import json
import json.scanner
import time

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import ApiToken
from connections.choices import Status
from connections.models import Connection
from core.parsers import json_depth, json_depth_exceeds
from credentials.models import Credential
from environments.models import Environment, EnvironmentMembership

pytestmark = pytest.mark.django_db

HUGE = 99999999999999999999999  # 23 digits: more than 64 bits
BEYOND = 2**63  # one more than the largest id
# what an id typed into a page may be instead of one
NOT_IDS = [
    "abc",
    "1e5",
    "-1",
    "0",
    "1.5",
    " ",
    "1_000",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it, a database id it is not
    "12\x00",
    str(HUGE),
    str(BEYOND),
    "9" * 5000,  # past int()'s 4300 digits
]


@pytest.fixture(autouse=True)
def no_dns(settings):
    """A probe's names go to a closed port on loopback (c-ares fails at once): no lookup leaves
    the machine, whatever URL a test types."""
    settings.PROBE_DNS_SERVERS = ["127.0.0.1:9"]


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def api_client(owner) -> APIClient:
    client = APIClient()
    client.force_login(owner)
    return client


@pytest.fixture
def credential(owner) -> Credential:
    credential = Credential(name="token", kind="bearer_token", owner=owner)
    credential.set_secret({"token": "s3cret-bad-input"})
    credential.save()
    return credential


@pytest.fixture
def shared_env(owner, make_connection, credential, stranger) -> Environment:
    environment = Environment.objects.create(name="prod", owner=owner)
    environment.connections.add(make_connection(Status.CONNECTED, name="api"))
    environment.credentials.add(credential)
    EnvironmentMembership.objects.create(environment=environment, user=stranger, role="viewer")
    return environment


def snapshot(environment: Environment) -> tuple:
    """Everything a form of the environment page may change."""
    environment.refresh_from_db()
    return (
        environment.name,
        environment.description,
        sorted(environment.connections.values_list("pk", flat=True)),
        sorted(environment.credentials.values_list("pk", flat=True)),
        sorted(environment.memberships.values_list("pk", "user_id", "role")),
    )


def connection_row(pk: int) -> dict:
    return Connection.all_objects.filter(pk=pk).values().get()


def assert_api_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    if status == 404 and not response["Content-Type"].startswith("application/json"):
        return {}  # no URL pattern matched: Django's own 404 page
    error = response.json()["error"]
    assert error["status"] == status and error["message"]
    if field is not None:
        assert field in error["fields"], error
    return error


# --- ids in URLs ------------------------------------------------------------------------------


PAGE_URLS = [
    ("GET", "/connections/{id}/"),
    ("POST", "/connections/{id}/transition/"),
    ("GET", "/environments/{id}/"),
    ("GET", "/environments/{id}/edit/"),
    ("POST", "/environments/{id}/edit/"),
    ("POST", "/environments/{id}/delete/"),
    ("POST", "/environments/{id}/transition/"),
    ("POST", "/environments/{id}/connections/"),
    ("POST", "/environments/{id}/credentials/"),
    ("POST", "/environments/{id}/members/"),
    ("GET", "/credentials/{id}/edit/"),
    ("POST", "/credentials/{id}/edit/"),
    ("POST", "/credentials/{id}/delete/"),
    ("POST", "/accounts/tokens/{id}/revoke/"),
]


@pytest.mark.parametrize("method,url", PAGE_URLS)
@pytest.mark.parametrize("pk", [HUGE, BEYOND, 10**18 - 1, 0])
def test_page_ids_wider_than_a_database_integer_are_404(owner, shared_env, method, url, pk):
    before = snapshot(shared_env)
    client = page_client(owner)
    path = url.format(id=pk)
    response = client.get(path) if method == "GET" else client.post(path, {"to": "maintenance"})
    assert response.status_code == 404
    assert snapshot(shared_env) == before


def test_the_id_converter_takes_at_most_18_digits():
    assert reverse("connections:detail", args=[10**18 - 1]) == f"/connections/{10**18 - 1}/"
    for pk in (10**18, HUGE, -1):
        with pytest.raises(Exception, match="Reverse"):
            reverse("connections:detail", args=[pk])


API_URLS = [
    ("get", "/api/connections/{id}/"),
    ("patch", "/api/connections/{id}/"),
    ("post", "/api/connections/{id}/transition/"),
    ("get", "/api/connections/{id}/history/"),
    ("get", "/api/environments/{id}/"),
    ("patch", "/api/environments/{id}/"),
    ("delete", "/api/environments/{id}/"),
    ("get", "/api/environments/{id}/members/"),
    ("post", "/api/environments/{id}/connections/"),
    ("post", "/api/environments/{id}/transition/"),
    ("get", "/api/credentials/{id}/"),
    ("patch", "/api/credentials/{id}/"),
    ("delete", "/api/credentials/{id}/"),
]


@pytest.mark.parametrize("method,url", API_URLS)
@pytest.mark.parametrize("pk", [HUGE, BEYOND, "abc", "1.5"])
def test_api_ids_wider_than_a_database_integer_are_404(api_client, shared_env, method, url, pk):
    before = snapshot(shared_env)
    response = getattr(api_client, method)(url.format(id=pk), {"to": "maintenance"}, format="json")
    assert_api_error(response, 404)
    assert snapshot(shared_env) == before


@pytest.mark.parametrize("member_id", [HUGE, BEYOND, 0])
def test_removing_a_member_by_a_huge_id_is_404(api_client, shared_env, member_id):
    before = snapshot(shared_env)
    response = api_client.delete(f"/api/environments/{shared_env.pk}/members/{member_id}/")
    assert_api_error(response, 404)
    assert snapshot(shared_env) == before


# --- ids posted on the environment page -------------------------------------------------------


def _page_refusal(response) -> str:
    assert response.status_code == 400
    page = response.content.decode()
    assert 'class="messages' in page or "message" in page
    return page


@pytest.mark.parametrize("value", NOT_IDS)
def test_sharing_a_credential_by_something_not_an_id_is_400(owner, shared_env, value):
    before = snapshot(shared_env)
    response = page_client(owner).post(
        reverse("environments:credentials", args=[shared_env.pk]), {"credential": value}
    )
    assert "Choose a credential from the list." in _page_refusal(response)
    assert snapshot(shared_env) == before


def test_sharing_no_credential_is_400(owner, shared_env):
    before = snapshot(shared_env)
    for body in ({}, {"credential": ""}, {"remove": "1"}):
        response = page_client(owner).post(
            reverse("environments:credentials", args=[shared_env.pk]), body
        )
        assert "Choose a credential." in _page_refusal(response)
    assert snapshot(shared_env) == before


@pytest.mark.parametrize("value", NOT_IDS)
def test_unsharing_a_credential_by_something_not_an_id_is_400(owner, shared_env, value):
    before = snapshot(shared_env)
    response = page_client(owner).post(
        reverse("environments:credentials", args=[shared_env.pk]),
        {"credential": value, "remove": "1"},
    )
    _page_refusal(response)
    assert snapshot(shared_env) == before


@pytest.mark.parametrize("value", NOT_IDS)
def test_removing_a_member_by_something_not_an_id_is_400(owner, shared_env, value):
    before = snapshot(shared_env)
    response = page_client(owner).post(
        reverse("environments:members", args=[shared_env.pk]), {"remove": value}
    )
    assert "Choose a member from the list." in _page_refusal(response)
    assert snapshot(shared_env) == before


def test_removing_a_member_who_is_not_one_says_so(owner, shared_env, stranger):
    before = snapshot(shared_env)
    other = Environment.objects.create(name="other", owner=owner)
    foreign = EnvironmentMembership.objects.create(environment=other, user=stranger)
    response = page_client(owner).post(
        reverse("environments:members", args=[shared_env.pk]), {"remove": foreign.pk}, follow=True
    )
    assert "not in the environment" in response.content.decode()
    assert (
        snapshot(shared_env) == before
        and EnvironmentMembership.objects.filter(pk=foreign.pk).exists()
    )


@pytest.mark.parametrize("value", NOT_IDS)
def test_assigning_connections_by_something_not_an_id_is_400(
    owner, shared_env, make_connection, value
):
    good = make_connection(Status.CONNECTED, name="good")
    before = snapshot(shared_env)
    for remove in ("", "1"):
        response = page_client(owner).post(
            reverse("environments:connections", args=[shared_env.pk]),
            {"connection": [good.pk, value], "remove": remove},
        )
        assert "Choose connections from the list." in _page_refusal(response)
    assert snapshot(shared_env) == before


def test_a_bad_id_from_htmx_answers_the_messages_alone(owner, shared_env):
    response = page_client(owner).post(
        reverse("environments:credentials", args=[shared_env.pk]),
        {"credential": "abc"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "Choose a credential from the list." in response.content.decode()
    assert "<html" not in response.content.decode()


def test_good_ids_still_work(owner, shared_env, make_connection, credential, stranger):
    client = page_client(owner)
    extra = make_connection(Status.CONNECTED, name="extra")
    client.post(
        reverse("environments:connections", args=[shared_env.pk]), {"connection": [extra.pk]}
    )
    assert shared_env.connections.filter(pk=extra.pk).exists()
    client.post(
        reverse("environments:credentials", args=[shared_env.pk]),
        {"credential": f" {credential.pk} ", "remove": "1"},
    )
    assert not shared_env.credentials.exists()
    membership = shared_env.memberships.get(user=stranger)
    client.post(reverse("environments:members", args=[shared_env.pk]), {"remove": membership.pk})
    assert not shared_env.memberships.exists()


# --- ids in form fields of the other pages ----------------------------------------------------
# (connections/forms.py and connections/views.py: on SQLite a ModelMultipleChoiceField's and the
# bulk form's ``pk__in`` reach the driver with a number wider than 64 bits, an OverflowError;
# reported, not fixed here)


def sqlite_overflow(value: str):
    """(Was a 500 on SQLite: pk__in with an id past 64 bits; bounded in the forms now.)"""
    return pytest.param(value, id=value[:24])


@pytest.mark.parametrize(
    "value", [sqlite_overflow(str(HUGE)), sqlite_overflow(str(BEYOND)), "-1", "abc", "1e999"]
)
def test_a_huge_credential_or_environment_on_the_add_form_is_400(owner, value):
    response = page_client(owner).post(
        reverse("connections:add"),
        {
            "kind": "http",
            "name": "n",
            "url": "http://127.0.0.1:1/",
            "credential": value,
            "environments": [value],
            "failure_threshold": "3",
            "probe_interval": "30",
        },
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Connection.all_objects.exists()


@pytest.mark.parametrize("value", [sqlite_overflow(str(HUGE)), sqlite_overflow(str(BEYOND)), "abc"])
def test_a_huge_environment_on_the_import_form_is_400(owner, value):
    response = page_client(owner).post(
        reverse("connections:import"), {"text": "apiVersion: v1", "environments": [value]}
    )
    assert response.status_code == 400
    assert not Connection.all_objects.exists()


@pytest.mark.parametrize(
    "value", [sqlite_overflow(str(HUGE)), sqlite_overflow("1" + "0" * 30), "abc", "1,,x"]
)
def test_a_huge_id_in_the_bulk_form_is_refused(owner, make_connection, value):
    """The bulk form answers a refusal as its other refusals: a redirect with the message (400
    to htmx), or 404 for ids that are no visible connection."""
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    for action in ("transition:maintenance", f"assign:{value}", f"assign:{HUGE}"):
        response = page_client(owner).post(
            reverse("connections:bulk"), {"action": action, "ids": f"{connection.pk} {value}"}
        )
        assert response.status_code in (302, 400, 404)
    assert connection_row(connection.pk) == before


# --- ids and integers in API bodies -----------------------------------------------------------


def test_bulk_transition_refuses_ids_beyond_64_bits(api_client, make_connection):
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    for ids in ([10**30], [connection.pk, BEYOND], [-1], [0], ["abc"], [1.5], [None], [True]):
        response = api_client.post(
            "/api/connections/bulk-transition/", {"ids": ids, "to": "maintenance"}, format="json"
        )
        assert_api_error(response, 400, "ids")
    assert connection_row(connection.pk) == before


BAD_PKS = [
    99999999999999999999,
    BEYOND,
    -1,
    0,
    1.5,
    "abc",
    "9" * 30,
    True,
    [1],
    {"id": 1},
]


@pytest.mark.parametrize("value", BAD_PKS)
def test_creating_a_connection_with_a_bad_credential_is_400(api_client, value):
    response = api_client.post(
        "/api/connections/",
        {"name": "n", "kind": "http", "url": "http://127.0.0.1:1/", "credential": value},
        format="json",
    )
    assert_api_error(response, 400, "credential")
    assert not Connection.all_objects.exists()


@pytest.mark.parametrize("value", BAD_PKS)
def test_creating_a_connection_in_bad_environments_is_400(api_client, shared_env, value):
    before = snapshot(shared_env)
    response = api_client.post(
        "/api/connections/",
        {"name": "n", "kind": "http", "url": "http://127.0.0.1:1/", "environments": [value]},
        format="json",
    )
    assert_api_error(response, 400, "environments")
    assert snapshot(shared_env) == before and Connection.all_objects.count() == 1


def test_infinity_from_json_is_400_not_an_overflow(api_client, make_connection):
    """JSON reads ``1e999`` as infinity: ``int(inf)`` would be an OverflowError."""
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    for body, field in (
        (
            '{"name": "n", "kind": "http", "url": "http://127.0.0.1:1/", "credential": 1e999}',
            "credential",
        ),
        (
            '{"name": "n", "kind": "http", "url": "http://127.0.0.1:1/", "environments": [1e999]}',
            "environments",
        ),
        (
            '{"name": "n", "kind": "http", "url": "http://127.0.0.1:1/", "probe_interval": 1e999}',
            "probe_interval",
        ),
    ):
        response = api_client.generic(
            "POST", "/api/connections/", body, content_type="application/json"
        )
        assert_api_error(response, 400, field)
    response = api_client.generic(
        "PATCH",
        f"/api/connections/{connection.pk}/",
        '{"credential": -1e999}',
        content_type="application/json",
    )
    assert_api_error(response, 400, "credential")
    assert connection_row(connection.pk) == before


@pytest.mark.parametrize(
    "field,value",
    [
        ("credential", 99999999999999999999),
        ("credential", BEYOND),
        ("credential", "abc"),
        ("failure_threshold", 10**30),
        ("failure_threshold", -(10**30)),
        ("probe_interval", BEYOND),
        ("probe_interval", "1" * 30),
    ],
)
def test_patching_a_connection_with_a_huge_number_is_400(api_client, make_connection, field, value):
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    response = api_client.patch(f"/api/connections/{connection.pk}/", {field: value}, format="json")
    assert_api_error(response, 400, field)
    assert connection_row(connection.pk) == before


@pytest.mark.parametrize("key", ["add", "remove"])
@pytest.mark.parametrize("ids", [[10**30], [BEYOND], [0], ["x"], [1e300]])
def test_assigning_huge_ids_to_an_environment_is_400(api_client, shared_env, key, ids):
    before = snapshot(shared_env)
    response = api_client.post(
        f"/api/environments/{shared_env.pk}/connections/", {key: ids}, format="json"
    )
    assert_api_error(response, 400, key)
    assert snapshot(shared_env) == before


def test_importing_into_huge_environments_is_400(api_client, shared_env):
    before = snapshot(shared_env)
    response = api_client.post(
        "/api/kubeconfig-import/",
        {"kubeconfig": "apiVersion: v1", "environments": [99999999999999999999]},
        format="json",
    )
    assert_api_error(response, 400, "environments")
    assert snapshot(shared_env) == before and Connection.all_objects.count() == 1


# --- bodies the parser refuses ----------------------------------------------------------------


def deep(levels: int, *, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


@pytest.mark.parametrize(
    "body",
    [
        deep(10_000),
        '{"name": ' + deep(10_000) + "}",
        '{"a": ' * 10_000 + "1" + "}" * 10_000,
        "[" * 10_000,  # never closed
        '{"metadata": ' + deep(40, inner='{"x": "]]]]"}') + "}",
    ],
    ids=["array", "in-a-field", "objects", "unclosed", "just-over"],
)
def test_json_nested_too_deep_is_400(api_client, make_connection, body):
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    for method, url in (
        ("POST", "/api/connections/"),
        ("PATCH", f"/api/connections/{connection.pk}/"),
        ("POST", "/api/environments/"),
        ("POST", "/api/credentials/"),
        ("POST", "/api/connections/bulk-transition/"),
    ):
        response = api_client.generic(method, url, body, content_type="application/json")
        error = assert_api_error(response, 400)
        assert "nested deeper than" in error["message"], (method, url)
    assert connection_row(connection.pk) == before
    assert Connection.all_objects.count() == 1


def test_nesting_up_to_the_limit_is_parsed(api_client, settings):
    """A body nested exactly MAX_JSON_DEPTH deep reaches the view (an unknown field is
    ignored); one level more is the parser's 400."""
    limit = settings.MAX_JSON_DEPTH
    deepest = {"name": "deep", "ignored": json.loads(deep(limit - 1))}  # the body is a level
    response = api_client.post("/api/environments/", deepest, format="json")
    assert response.status_code == 201, response.content
    too_deep = {"name": "deeper", "ignored": json.loads(deep(limit))}
    response = api_client.post("/api/environments/", too_deep, format="json")
    assert "nested deeper than" in assert_api_error(response, 400)["message"]
    assert list(Environment.objects.values_list("name", flat=True)) == ["deep"]


@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"text"', "1", "true", "null", "1e999"])
def test_patching_with_a_body_that_is_not_an_object_is_400(api_client, make_connection, body):
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    response = api_client.generic(
        "PATCH", f"/api/connections/{connection.pk}/", body, content_type="application/json"
    )
    assert_api_error(response, 400)
    assert connection_row(connection.pk) == before


@pytest.mark.parametrize(
    "body",
    [
        "{",
        "{'a': 1}",
        '{"name": NaN}',
        '{"name": Infinity}',
        '{"a": 1}{"b": 2}',
        '{"n": ' + "9" * 5000 + "}",  # past int()'s 4300 digits
        '{"name": "\\ud800"}',  # half a surrogate pair: no database stores it
        '{"name": "x\\udfff"}',
        '{"\\udc00": 1}',
        "\ufeff{}",
    ],
)
def test_malformed_json_is_400(api_client, make_connection, body):
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    for method, url in (
        ("POST", "/api/connections/"),
        ("PATCH", f"/api/connections/{connection.pk}/"),
        ("POST", "/api/environments/"),
    ):
        response = api_client.generic(
            method, url, body.encode("utf-8"), content_type="application/json"
        )
        assert_api_error(response, 400)
    assert connection_row(connection.pk) == before


def test_a_surrogate_pair_is_fine(api_client):
    response = api_client.generic(
        "POST", "/api/environments/", '{"name": "\\ud83d\\ude00"}', content_type="application/json"
    )
    assert response.status_code == 201 and response.json()["name"] == "\U0001f600"


@pytest.mark.parametrize(
    "content_type,body",
    [
        ("application/json; charset=rot13", b'{"name": "x"}'),
        ("application/json; charset=bz2_codec", b'{"name": "x"}'),
        ("application/json; charset=utf-8", b'{"name": "\xff"}'),
        ("application/json; charset=utf-16", deep(10_000).encode("utf-16")),
        ("application/json; charset=utf-32", deep(10_000).encode("utf-32")),
        ("application/json; charset=utf-16", '{"name": "\\ud800"}'.encode("utf-16")),
        # U+2200 is 00 22 in UTF-16-LE: a scan of the bytes would see a quote there, think the
        # rest a string, and let the nesting through to the parser's RecursionError
        (
            "application/json; charset=utf-16-le",
            ('["\u2200", ' + deep(10_000) + "]").encode("utf-16-le"),
        ),
        (
            "application/json; charset=utf-16-be",
            ('["\u5c22", ' + deep(10_000) + "]").encode("utf-16-be"),
        ),
    ],
)
def test_charsets_and_encodings_are_refused_or_bounded(api_client, content_type, body):
    response = api_client.generic("POST", "/api/environments/", body, content_type=content_type)
    assert_api_error(response, 400)
    assert not Environment.objects.exists()


def test_a_utf16_body_within_the_limit_is_parsed(api_client):
    body = json.dumps({"name": "ütf-16", "description": "[[["}).encode("utf-16")
    response = api_client.generic(
        "POST", "/api/environments/", body, content_type="application/json; charset=utf-16"
    )
    assert response.status_code == 201 and response.json()["name"] == "ütf-16"


def test_a_token_revoked_by_a_huge_id_is_404(owner):
    token, _ = ApiToken.issue(owner, "t")
    response = page_client(owner).post(f"/accounts/tokens/{HUGE}/revoke/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


# --- the parser's depth scan ------------------------------------------------------------------


def reference_depth(text: str) -> int:
    """The scan the parser had: a Python loop per character (the definition, slowly)."""
    depth = top = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            top = max(top, depth)
        elif char in "]}":
            depth -= 1
    return top


def nesting(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    return 0


TRICKY_TEXT = st.text(alphabet='[]{}"\\ab:,\n\u00e9\U0001f600', max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, database=None)
@given(JSON_VALUES, st.booleans(), st.sampled_from([None, 0, 2, "\t"]))
def test_the_depth_scan_agrees_with_the_parser(value, ascii_only, indent):
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    assert json_depth(text) == json_depth(text.encode("utf-8")) == nesting(value)
    assert json_depth(text) == reference_depth(text)
    for limit in (0, 1, 3, 32):
        assert json_depth_exceeds(text, limit) == (nesting(value) > limit)


def parser_reach(text: str) -> int:
    """How deep Python's JSON parser (its pure-Python scanner, instrumented) recurses into the
    text before it returns or fails."""
    decoder = json.JSONDecoder()
    depth = top = 0

    def tracked(parse):
        def parse_level(*args, **kwargs):
            nonlocal depth, top
            depth += 1
            top = max(top, depth)
            try:
                return parse(*args, **kwargs)
            finally:
                depth -= 1

        return parse_level

    decoder.parse_array = tracked(decoder.parse_array)
    decoder.parse_object = tracked(decoder.parse_object)
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    with contextlib.suppress(ValueError):
        decoder.decode(text)
    return top


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(alphabet='[]{}"\\a,:1 ', max_size=80))
def test_the_depth_scan_never_falls_short_on_malformed_text(text):
    """However a text is broken, the parser recurses no deeper than the scan counted."""
    assert json_depth(text) >= parser_reach(text)
    assert json_depth(text.encode()) >= parser_reach(text)


@settings(max_examples=300, deadline=None, database=None)
@given(JSON_VALUES)
def test_the_instrumented_parser_measures_nesting(value):
    assert parser_reach(json.dumps(value)) == nesting(value)


def test_the_depth_scan_is_fast_on_512_kib():
    """Every shape of a 512 KiB body is scanned in well under 20 ms on a developer machine; the
    bound here is looser (a shared CI runner), but a scan per byte or a quadratic one fails."""
    size = 512 * 1024
    shapes = {
        "opening brackets": "[" * size,
        "balanced, 256K deep": "[" * (size // 2) + "]" * (size // 2),
        "32-deep blocks": ("[" * 32 + "]" * 32) * (size // 64),
        "flat lists": "[" + "[]," * (size // 3 - 1) + "[]]",
        "tiny strings in lists": "[" + '[""],' * (size // 5 - 1) + '[""]]',
        "escaped quotes": '"' + '\\"' * (size // 2 - 1),
        "escaped backslashes": "[" * 40 + '"' + "\\\\" * (size // 2 - 50) + '"',
        "realistic": json.dumps(
            [
                {"name": f"c{i}", "url": "http://x/", "m": {"a": [1, {"b": [2]}]}}
                for i in range(6500)
            ]
        ),
    }
    for name, text in shapes.items():
        body = text[:size].encode()
        best = min(_timed(json_depth_exceeds, body, 32) for _ in range(3))
        assert best < 0.1, f"{name}: {best * 1000:.1f} ms"


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


# --- known 500s in code these tests do not own (reported; see KNOWN_500S in the fuzz tests) ----
# Strict: once fixed, the test passes, fails as XPASS, and its mark (and the KNOWN_500S entry in
# tests/test_fuzz_inputs.py) goes.

ON_POSTGRES = django_settings.TESTS_ON_POSTGRES


@pytest.mark.parametrize("page", ["connections:transition", "environments:connections"])
def test_a_next_that_is_no_url_is_not_a_500(owner, shared_env, page):
    pk = shared_env.connections.get().pk if page == "connections:transition" else shared_env.pk
    response = page_client(owner).post(
        reverse(page, args=[pk]), {"to": "bogus", "connection": [], "next": "a"}
    )
    assert response.status_code < 500


def test_a_token_name_with_nul_is_not_a_500(owner):
    response = page_client(owner).post("/accounts/tokens/", {"name": "a\x00"})
    assert response.status_code < 500


def test_a_member_username_with_nul_is_not_a_500(api_client, shared_env):
    before = snapshot(shared_env)
    response = api_client.post(
        f"/api/environments/{shared_env.pk}/members/",
        {"username": "\x00", "role": "viewer"},
        format="json",
    )
    assert 400 <= response.status_code < 500
    assert snapshot(shared_env) == before


@pytest.mark.parametrize("metadata", [{"a": "\x00"}, {"\x00": 1}, {"a": ["x\x00"]}])
def test_metadata_with_nul_is_400(api_client, make_connection, metadata):
    """(Was a 500 on PostgreSQL, found here; fixed in the model's clean.)"""
    connection = make_connection(Status.CONNECTED, name="c")
    before = connection_row(connection.pk)
    response = api_client.patch(
        f"/api/connections/{connection.pk}/", {"metadata": metadata}, format="json"
    )
    assert_api_error(response, 400, "metadata")
    assert connection_row(connection.pk) == before


@pytest.mark.parametrize("path", ["/connections/", "/api/connections/"])
def test_a_very_long_search_is_not_a_500(owner, make_connection, path):
    make_connection(Status.CONNECTED, name="c")
    client = APIClient()
    client.force_login(owner)
    response = client.get(path, {"q": "a" * 49_999})
    assert response.status_code < 500


# ---- names are one line, through every door -------------------------------------------------

LINE_BREAK = "ops\r\nBcc: victim@example.com"


def _name_doors(endpoint_url: str) -> list[tuple[str, str, dict]]:
    """(kind of request, URL, body) of every page and API call that names something."""
    return [
        (
            "page",
            "/connections/add/",
            {
                "kind": "http",
                "name": LINE_BREAK,
                "url": f"{endpoint_url}/a",
                "failure_threshold": 3,
                "probe_interval": 30,
                "retry_interval": 5,
            },
        ),
        (
            "page",
            "/connections/add/",
            {
                "kind": "http",
                "name": "ok",
                "url": f"{endpoint_url}/b",
                "new_credential_kind": "bearer_token",
                "new_credential_name": LINE_BREAK,
                "new_credential_secret": "tok-123456",
                "failure_threshold": 3,
                "probe_interval": 30,
                "retry_interval": 5,
            },
        ),
        ("page", "/accounts/tokens/", {"name": LINE_BREAK}),
        ("page", "/environments/add/", {"name": LINE_BREAK, "description": ""}),
        (
            "page",
            "/credentials/add/",
            {
                "name": LINE_BREAK,
                "kind": "bearer_token",
                "secret": "tok-123456",
                "endpoints_text": endpoint_url,
            },
        ),
        (
            "api",
            "/api/connections/",
            {
                "name": LINE_BREAK,
                "kind": "http",
                "url": f"{endpoint_url}/c",
                "failure_threshold": 3,
                "probe_interval": 30,
            },
        ),
        ("api", "/api/environments/", {"name": LINE_BREAK}),
        (
            "api",
            "/api/credentials/",
            {
                "name": LINE_BREAK,
                "kind": "bearer_token",
                "secret": "tok-123456",
                "endpoints": [endpoint_url],
            },
        ),
        (
            "api",
            "/api/notifications/channels/",
            {
                "name": LINE_BREAK,
                "kind": "webhook",
                "destination": f"{endpoint_url}/hook",
            },
        ),
        (
            "api",
            "/api/maintenance/windows/",
            {
                "name": LINE_BREAK,
                "kind": "one_off",
                "starts_at": "2030-01-01T00:00:00Z",
                "ends_at": "2030-01-01T01:00:00Z",
            },
        ),
    ]


@pytest.mark.parametrize("door", range(10))
def test_no_door_stores_a_name_with_a_line_break(owner, http_endpoint, door):
    from maintenance.models import Window
    from notifications.models import Channel

    kind, url, body = _name_doors(http_endpoint.url)[door]
    if kind == "page":
        client = Client()
        client.force_login(owner)
        answer = client.post(url, body)
    else:
        api_client = APIClient()
        api_client.force_login(owner)
        answer = api_client.post(url, body, format="json")
    assert answer.status_code < 500
    for model in (Connection, Credential, Environment, ApiToken, Channel, Window):
        stored = model._base_manager.values_list("name", flat=True)
        assert not any("\n" in name or "\r" in name for name in stored), (model, list(stored))


@pytest.mark.parametrize("model_name", ["credential", "environment"])
def test_names_made_one_line_by_the_upgrade_stay_unique_per_owner(owner, model_name):
    """Saved before names were checked: "ci\\ttoken" and "ci\\ntoken" beside "ci token"."""
    from core.text import make_names_one_line

    model = Credential if model_name == "credential" else Environment
    for name in ("ci token", "ci\ttoken", "ci\ntoken"):
        row = model(name="placeholder", owner=owner)
        if model is Credential:
            row.kind = "bearer_token"
            row.set_secret({"token": "abcdef123"})
        row.save()
        model.objects.filter(pk=row.pk).update(name=name)  # as an earlier release stored it
    assert make_names_one_line(model) == 2
    assert sorted(model.objects.values_list("name", flat=True)) == [
        "ci token",
        "ci token (2)",
        "ci token (3)",
    ]


# ---- what Django reads before any of our code: through the WSGI application ----------------


def _wsgi(content_type: str, query: str = "page_size=0") -> tuple[str, bytes]:
    from meshplay.wsgi import application

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/notifications/deliveries/",
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": __import__("io").BytesIO(b""),
        "wsgi.errors": __import__("io").StringIO(),
    }
    answered = []
    body = b"".join(application(environ, lambda status, headers: answered.append(status)))
    return answered[0], body


@pytest.mark.parametrize("charset", ["rot13", "base64", "zlib", "hex", "uu"])
def test_a_charset_that_is_no_text_encoding_is_a_400(charset):
    status, body = _wsgi(f"application/json; charset={charset}")
    assert status.startswith("400") and b"no text encoding" in body


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/plain", ""])
def test_readable_charsets_reach_the_app(content_type):
    status, _ = _wsgi(content_type)
    assert status.startswith("401")  # the API's own answer to a stranger: it was read


def test_a_user_name_longer_than_any_is_a_form_error_not_a_500(client):
    """django-axes records a failed sign-in's user name in 255 characters: the form now stops
    a longer one before anyone is asked."""
    from axes.models import AccessAttempt

    for url in ("/accounts/login/", "/admin/login/"):
        answer = client.post(url, {"username": "a" * 256, "password": " x"})
        assert answer.status_code == 200, url
        assert answer.context["form"].errors, url  # refused by the form
        assert not AccessAttempt.objects.exists()  # before anyone was asked


@pytest.mark.parametrize(
    "metadata",
    [
        {"a": "\x00"},
        {"\x00": 1},
        {"a": {"b": {"c": "\ud800"}}},
        {"deep": json.loads("[" * 40 + "]" * 40)},
    ],
)
def test_metadata_a_database_refuses_is_a_400(shared_token, make_connection, metadata):
    owner, _, _, _, _ = shared_token
    conn = make_connection("registered", owner=owner)
    api = APIClient()
    api.force_authenticate(owner)
    response = api.patch(
        f"/api/connections/{conn.pk}/",
        json.dumps({"metadata": metadata}),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "metadata" in error.get("fields", {}) or "JSON" in error["message"], error
