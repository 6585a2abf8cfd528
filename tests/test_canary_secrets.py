"""A canary secret planted in every credential kind never shows: not in a page, an API answer,
an admin page, a log line or a database column, after probes, discovery and scrapes fail in
every way a hostile or broken endpoint can make them fail.

The endpoints are real loopback servers: one echoes the Authorization header into its error
bodies, headers, redirects and version strings; the Kubernetes API speaks TLS with a CA the
client does not trust, or refuses the token. Stored kubeconfigs from before the bounds (a
proxy-url, a token with a line break) are written straight to the database, as an upgrade
would find them.
"""

from __future__ import annotations

import base64
import json
import logging
import threading

import pytest
import yaml
from django.apps import apps
from django.db import connection as db
from django.urls import reverse

from connections.choices import Status
from connections.discovery import discover_cluster
from connections.models import Connection
from connections.probing import scheduling
from connections.probing.probes import check_reachability
from connections.probing.probes.kubernetes import encode_ca
from connections.probing.scrape import scrape_connected
from credentials import crypto
from credentials.bounds import origin_of
from credentials.models import Credential
from credentials.scrub import scrub_text, secret_fragments
from environments.models import Environment, EnvironmentMembership
from tests.helpers import SHARED_SECRET, JSONHandler
from tests.kube_api import FakeKubernetesAPI, make_ca_and_cert
from tests.services import LoopbackHTTPServer

CANARY = "CANARY-7f3a9c2e51"  # every secret below contains it
SECRETS = {
    "bearer_token": {"token": f"{CANARY}-bearer"},
    "api_key": {"key": f"{CANARY}-apikey"},
    "basic_auth": {"username": "admin", "password": f"{CANARY}-basic"},
}
# what the canary looks like once a client encoded it for the wire
BASIC_WIRE = base64.b64encode(f"admin:{CANARY}-basic".encode()).decode()
NEEDLES = (CANARY, BASIC_WIRE, CANARY.lower())


class Echo(JSONHandler):
    """A hostile endpoint: whatever credential it receives, it tries to make us show it."""

    def do_GET(self):  # noqa: N802
        auth = self.headers.get("Authorization", "")
        path = self.path.split("?")[0].rstrip("/")
        if path.endswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:9/steal?auth={auth}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.endswith("/api/v1/status/buildinfo") or path.endswith("/api/health"):
            # a lying server puts the token into the version the probe records
            self.answer(200, {"status": "success", "data": {"version": auth}, "version": auth})
            return
        if path.endswith("/-/ready"):
            self.answer(200, {"ready": auth})
            return
        status = 500 if path.endswith("/500") else 401
        self.send_response(status)
        self.send_header("WWW-Authenticate", f'Bearer error="invalid_token" token="{auth}"')
        body = json.dumps({"error": f"bad credential {auth}", "headers": dict(self.headers)})
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def echo():
    server = LoopbackHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def kube():
    with FakeKubernetesAPI(tokens={"admin-token": "admin"}) as server:
        yield server


def credential(owner, kind, secret, *endpoints, name=None):
    cred = Credential(
        name=name or f"{kind}-{len(endpoints)}-{endpoints[0] if endpoints else ''}"[:200],
        kind=kind,
        owner=owner,
        endpoints=[origin_of(url) for url in endpoints],
    )
    cred.set_secret(secret)
    cred.save()
    return cred


def legacy_credential(owner, name, kind, secret, *endpoints):
    """A row as an older version stored it: the secret as typed, no validation."""
    return Credential.objects.create(
        name=name,
        kind=kind,
        owner=owner,
        endpoints=[origin_of(url) for url in endpoints],
        secret_ciphertext=crypto.encrypt(json.dumps(secret).encode()),
    )


def kubeconfig(server_url, token, ca_pem, **cluster_extra):
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "c",
                    "cluster": {
                        "server": server_url,
                        "certificate-authority-data": encode_ca(ca_pem),
                        **cluster_extra,
                    },
                }
            ],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "ctx",
        }
    )


@pytest.fixture
def canary_world(owner, make_connection, echo, kube, dead_url, django_user_model):
    """Every credential kind, each behind endpoints that fail in a different way."""
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    env = Environment.objects.create(name="prod", owner=owner)
    EnvironmentMembership.objects.create(environment=env, user=viewer, role="viewer")
    url = echo.url
    made = []

    def add(kind, cred, target, status=Status.CONNECTED, **extra):
        conn = make_connection(status, kind=kind, url=target, credential=cred, **extra)
        env.connections.add(conn)
        env.credentials.add(cred) if cred else None
        made.append(conn)
        return conn

    bearer = credential(owner, "bearer_token", SECRETS["bearer_token"], url, kube.url)
    add("http", bearer, f"{url}/401")
    add("http", bearer, f"{url}/500", failure_threshold=2)
    add("http", bearer, f"{url}/redirect")
    add("remote_provider", bearer, f"{url}/provider")
    add("prometheus", bearer, f"{url}/prom", status=Status.REGISTERED)
    add("http", bearer, dead_url.replace("http://127.0.0.1", "http://localhost"))
    # TLS with a CA nobody trusts: the HTTP probe's TLS error
    add("http", bearer, f"{kube.url}/version")
    # out of its bounds (set by hand in the database, as a user could not)
    add("http", bearer, f"{dead_url}/elsewhere")
    api_key = credential(owner, "api_key", SECRETS["api_key"], url)
    add("grafana", api_key, f"{url}/grafana")
    basic = credential(owner, "basic_auth", SECRETS["basic_auth"], url)
    add("grafana", basic, f"{url}/grafana-basic")
    # Kubernetes: a refused token, a server whose certificate is from another CA,
    # a stored kubeconfig with a proxy, one with a line break in its token
    other_ca, _, _ = make_ca_and_cert()
    refused = f"{CANARY}-kube-refused"
    kc = credential(owner, "kubeconfig", {"kubeconfig": kubeconfig(kube.url, refused, kube.ca_pem)})
    add("kubernetes", kc, kube.url)
    wrong_ca = credential(
        owner,
        "kubeconfig",
        {"kubeconfig": kubeconfig(kube.url, f"{CANARY}-kube-tls", other_ca)},
        name="wrong-ca",
    )
    add("kubernetes", wrong_ca, f"{kube.url}/other")
    proxied = legacy_credential(
        owner,
        "legacy-proxy",
        "kubeconfig",
        {
            "kubeconfig": kubeconfig(
                kube.url, f"{CANARY}-kube-proxy", kube.ca_pem, **{"proxy-url": echo.url}
            )
        },
        kube.url,
    )
    add("kubernetes", proxied, f"{kube.url}/proxied")
    newline = legacy_credential(
        owner,
        "legacy-newline",
        "kubeconfig",
        {"kubeconfig": kubeconfig(kube.url, f"{CANARY}-kube-nl\n", kube.ca_pem)},
        kube.url,
    )
    add("kubernetes", newline, f"{kube.url}/newline")
    legacy_bearer = legacy_credential(
        owner, "legacy-bearer", "bearer_token", {"token": f"{CANARY}-legacy\n"}, url
    )
    add("http", legacy_bearer, f"{url}/legacy")
    return {"owner": owner, "viewer": viewer, "env": env, "connections": made, "echo": echo}


def leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def every_column_text() -> str:
    """Every text-like column of every table of the project's apps, as one string."""
    chunks = []
    with db.cursor() as cursor:
        for model in apps.get_models():
            if model._meta.app_label not in ("connections", "credentials", "environments", "axes"):
                continue
            columns = [
                f.column
                for f in model._meta.concrete_fields
                if f.get_internal_type() in ("CharField", "TextField", "JSONField")
                and f.column != "secret_ciphertext"
            ]
            if not columns:
                continue
            table = db.ops.quote_name(model._meta.db_table)
            cursor.execute(
                f"SELECT {', '.join(db.ops.quote_name(c) for c in columns)} FROM {table}"
            )
            chunks += [str(row) for row in cursor.fetchall()]
    return "\n".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_no_failure_anywhere_shows_a_secret(canary_world, kube, client, caplog, django_user_model):
    caplog.set_level(logging.DEBUG)
    echo = canary_world["echo"]
    out_of_bounds = next(c for c in canary_world["connections"] if c.url.endswith("/elsewhere"))
    for _ in range(3):  # enough failures to cross every threshold
        Connection.objects.update(next_probe_at=None)
        Connection.objects.filter(
            status__in=[Status.REGISTERED, Status.CONNECTED, Status.DISCONNECTED]
        ).update(next_probe_at="2000-01-01T00:00:00Z")
        scheduling.run_round()
    scrape_connected()
    for cluster in Connection.objects.filter(kind="kubernetes"):
        discover_cluster(cluster)

    rows = {c.url: c for c in Connection.objects.all()}
    # the probes did fail, each in its own way (so the scan below means something)
    errors = {url: (c.last_probe_error or "") for url, c in rows.items()}
    assert "outside" in errors[out_of_bounds.url] or "not sent" in errors[out_of_bounds.url]
    assert any("proxy" in text for text in errors.values()), errors
    assert any("auth" in text or "401" in text for text in errors.values()), errors
    assert any("TLS" in text or "certificate" in text for text in errors.values()), errors
    # and the hostile endpoint did receive the secrets it was bound to (the bounds allowed it)
    assert rows[f"{echo.url}/401"].last_probe_ok is False

    # every page, as the owner and as a viewer
    owner, viewer = canary_world["owner"], canary_world["viewer"]
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    pages = [
        reverse("connections:list"),
        reverse("credentials:list"),
        reverse("environments:list"),
        reverse("environments:detail", args=[canary_world["env"].pk]),
        "/api/connections/?page_size=500",
        "/api/credentials/",
        "/api/environments/",
    ]
    for conn in Connection.all_objects.all():
        pages += [
            reverse("connections:detail", args=[conn.pk]),
            f"/api/connections/{conn.pk}/",
            f"/api/connections/{conn.pk}/history/",
        ]
    for cred in Credential.objects.all():
        pages += [reverse("credentials:edit", args=[cred.pk]), f"/api/credentials/{cred.pk}/"]
    admin_pages = []
    for model in ("connection", "connectiontransition", "proberesult"):
        admin_pages.append(f"/admin/connections/{model}/")
    admin_pages.append("/admin/credentials/credential/")
    for conn in Connection.all_objects.all():
        admin_pages.append(f"/admin/connections/connection/{conn.pk}/change/")
    for cred in Credential.objects.all():
        admin_pages.append(f"/admin/credentials/credential/{cred.pk}/change/")
    shown = 0
    for user, urls in ((owner, pages), (viewer, pages), (admin, pages + admin_pages)):
        client.force_login(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code < 500, url
            body = response.content.decode(errors="replace")
            assert not leaks(body), (user.username, url, leaks(body))
            shown += response.status_code == 200
    assert shown > 50

    # every log line, and every column of every table
    assert not leaks(caplog.text), [r.getMessage() for r in caplog.records if leaks(r.getMessage())]
    assert not leaks(every_column_text())


@pytest.mark.django_db
def test_adding_a_connection_that_fails_shows_no_secret(owner, client, echo, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(owner)
    for kind, new_kind, secret in (
        ("http", "bearer_token", f"{CANARY}-typed\n"),
        ("grafana", "api_key", f"  {CANARY}-typed-key  "),
    ):
        response = client.post(
            reverse("connections:add"),
            {
                "kind": kind,
                "name": f"typed-{kind}",
                "url": f"{echo.url}/{kind}-401",
                "new_credential_kind": new_kind,
                "new_credential_name": f"typed {kind}",
                "new_credential_secret": secret,
                "failure_threshold": 3,
                "probe_interval": 30,
            },
            follow=True,
        )
        assert response.status_code == 200
        body = response.content.decode()
        assert "Not Found" in body or "could not be reached" in body, body[-2000:]
        assert not leaks(body)
    # the typed secret was normalised (no line break) and bound to the endpoint it was typed for
    stored = Credential.objects.get(name="typed http")
    assert stored.get_secret()["token"] == f"{CANARY}-typed"
    assert stored.endpoints == [origin_of(echo.url)]
    assert not leaks(caplog.text)
    assert not leaks(every_column_text())


# ---- the trust boundaries' review: echoed secrets in odd shapes -------------------------------


@pytest.mark.django_db
def test_a_secret_echoed_inside_nested_metadata_is_scrubbed(
    shared_token, json_echo, make_connection
):
    owner, _, credential, _, _ = shared_token
    credential.kind = "api_key"
    credential.set_secret({"key": SHARED_SECRET})
    credential.save()
    json_echo.answer = lambda path, headers: {
        "database": "ok",
        "version": {"echo": headers.get("Authorization")},
    }
    conn = make_connection("registered", kind="grafana", url=json_echo.url, credential=credential)
    outcome = check_reachability(Connection.objects.get(pk=conn.pk))
    assert outcome.ok, outcome.summary
    assert SHARED_SECRET not in json.dumps(outcome.metadata)
    assert "[redacted]" in json.dumps(outcome.metadata)


def test_scrubbing_never_leaves_the_start_of_a_secret_behind():
    fragments = secret_fragments({"token": SHARED_SECRET})
    text = "authorization=" + "x" * 7975 + "," + SHARED_SECRET
    assert SHARED_SECRET[:8] not in scrub_text(text, fragments)
    for form in (SHARED_SECRET.upper(), base64.b64encode(SHARED_SECRET.encode()).decode()):
        shown = scrub_text(f"server said {form}", fragments)
        assert form not in shown and "[redacted]" in shown
