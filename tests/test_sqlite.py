"""The default database is SQLite (``make run``), where a number wider than 64 bits or a time
past the calendar's end overflows the driver rather than matching no row. The suite runs on
PostgreSQL; this file runs hostile queries against a real SQLite database in a process of its
own (the app's own settings, migrated from scratch) and checks every answer is below 500."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EXTREME_TIME = (
    base64.urlsafe_b64encode(json.dumps([["0001-01-01T00:00:00+14:00"], 1]).encode())
    .decode()
    .rstrip("=")
)
LATE_TIME = (
    base64.urlsafe_b64encode(json.dumps([["9999-12-31T23:59:59-14:00"], 1]).encode())
    .decode()
    .rstrip("=")
)
HUGE = "9" * 20

PATHS = [
    f"/connections/?environment={HUGE}",
    f"/api/connections/?environment={HUGE}",
    f"/connections/?depends_on={HUGE}",
    f"/api/connections/?depends_on={HUGE}",
    f"/connections/?sort=created_at&after={EXTREME_TIME}",
    f"/connections/?sort=created_at&before={EXTREME_TIME}",
    f"/connections/?sort=-created_at&after={LATE_TIME}",
    "/api/notifications/events/?since=0001-01-01T00:00:00%2B14:00",
    f"/api/notifications/events/?connection={HUGE}",
    f"/api/notifications/deliveries/?channel={HUGE}",
    "/connections/?environment=%C2%B2",
    "/readyz",  # whether probing stalled: raw SQL whose times SQLite hands back as text
    "/",
]

SCRIPT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from django.contrib.auth import get_user_model
from django.test import Client
from connections.models import Connection
user = get_user_model().objects.create_user("u", password="pw-u-123456")
for n in range(3):
    Connection.objects.create(name=f"c{n}", kind="http", url=f"http://127.0.0.1:9/{n}",
                              status="registered", owner=user)
client = Client(raise_request_exception=False)
client.force_login(user)
print(json.dumps({path: client.get(path).status_code for path in json.loads(sys.argv[1])}))
"""


def test_hostile_queries_on_sqlite_are_never_a_500(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="meshplay.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="ERROR",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(PATHS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    failed = {path: code for path, code in answers.items() if code >= 500}
    assert not failed, failed
    assert answers[f"/connections/?environment={HUGE}"] == 400
    assert answers[f"/api/connections/?depends_on={HUGE}"] == 400
    assert answers["/readyz"] in (200, 503) and answers["/"] == 200
