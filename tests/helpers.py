"""Plain helpers several test modules share (no fixtures: those are in tests/fixtures/)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler

from django.db import connections as db_connections
from django.test import Client

from maintenance.models import Window

# The secret of the token ``shared_token`` (tests/fixtures/trust.py) shares into an environment.
SHARED_SECRET = "tok-CANARY-0123456789abcdef"


def client_for(user, **kwargs) -> Client:
    """A test client signed in as ``user`` (by session, no sign-in form)."""
    client = Client(**kwargs)
    client.force_login(user)
    return client


def run_concurrently(*actions):
    """Each action gets its own thread and database connection; all start together."""
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait(timeout=10)
            results[index] = ("ok", action())
        except Exception as exc:  # the loser's error is the result under test
            results[index] = ("error", exc)
        finally:
            db_connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def make_window(owner, *, connections=(), environments=(), **fields) -> Window:
    window = Window.objects.create(owner=owner, **{"name": "nightly", **fields})
    window.connections.set(connections)
    window.environments.set(environments)
    return window


def one_off(owner, start, end, **fields) -> Window:
    return make_window(owner, kind=Window.Kind.ONE_OFF, starts_at=start, ends_at=end, **fields)


class JSONHandler(BaseHTTPRequestHandler):
    """A loopback server's handler that answers JSON (``answer``) and logs nothing."""

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class FakeGrafana(JSONHandler):
    """Grafana's /api/health (no auth) and /api/org (auth) as Grafana answers them."""

    USER, PASSWORD, API_KEY = "admin", "grafana-pw", "glsa_testkey"

    def do_GET(self):  # noqa: N802
        auth = self.headers.get("Authorization", "")
        basic = "Basic " + base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        if self.path == "/api/health":
            self.answer(200, {"commit": "abc", "database": "ok", "version": "11.2.0"})
        elif self.path == "/api/org":
            if auth in (basic, f"Bearer {self.API_KEY}"):
                self.answer(200, {"id": 1, "name": "Main Org."})
            else:
                self.answer(401, {"message": "Unauthorized"})
        else:
            self.answer(404, {"message": "Not found"})


def edit_url(connection) -> str:
    from django.urls import reverse

    return reverse("connections:edit", args=[connection.pk])


def form_of(client, connection, **changes) -> dict:
    """What a connection's edit page's form sends as it was shown, with ``changes``."""
    response = client.get(edit_url(connection))
    assert response.status_code == 200
    form = response.context["form"]
    data = {name: form[name].value() for name in form.fields}
    data = {name: ("" if value is None else value) for name, value in data.items()}
    data.update(changes)
    return data
