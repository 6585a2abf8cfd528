"""Production settings pass Django's deploy checks; a broken key is caught before it bites."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py *args`` in a process of its own, with ``env`` over this one's (no test
    database, not CI)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CI")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_check(**env):
    return run_manage("check", "--deploy", "--fail-level", "WARNING", **env)


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "meshplay.settings",
    "DEBUG": "false",
    "LIVE_RELEASE": "settings-test",
    "SECRET_KEY": "p" + Fernet.generate_key().decode() * 2,
    "ALLOWED_HOSTS": "connections.example.org",
    "CREDENTIAL_KEYS": Fernet.generate_key().decode(),
}


def test_production_settings_pass_check_deploy():
    result = run_check(**PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_malformed_credential_key_fails_the_checks():
    result = run_check(**{**PRODUCTION, "CREDENTIAL_KEYS": "not-a-key"})
    assert result.returncode != 0
    assert "connections.E001" in result.stderr + result.stdout


def test_missing_credential_keys_are_reported_in_production():
    result = run_check(**{**PRODUCTION, "CREDENTIAL_KEYS": ""})
    assert result.returncode != 0
    assert "connections.W001" in result.stderr + result.stdout


def test_a_deploy_without_a_release_name_is_refused():
    """Every live ETag carries the release: with DEBUG off it must be named (LIVE_RELEASE), or
    the checks fail (a digest of the code is for development only)."""
    result = run_check(**{**PRODUCTION, "LIVE_RELEASE": ""})
    assert result.returncode != 0
    assert "live.E001" in result.stderr + result.stdout
    assert "LIVE_RELEASE" in result.stderr + result.stdout


def load_wsgi(**env):
    """Load the WSGI application as a gunicorn worker does (no system checks)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CI")}
    environment.update({**PRODUCTION, "WARM_UP": "false", **env})
    return subprocess.run(
        [sys.executable, "-c", "import meshplay.wsgi"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_web_worker_without_a_release_name_does_not_boot():
    """gunicorn runs no system checks: loading the WSGI application refuses to start, rather
    than serving 500s on every refreshable page."""
    result = load_wsgi(LIVE_RELEASE="")
    assert result.returncode != 0 and "LIVE_RELEASE" in result.stderr
    booted = load_wsgi(LIVE_RELEASE="r1")
    assert booted.returncode == 0, booted.stderr


def test_workers_and_commands_run_without_a_release_name():
    """Only the web needs LIVE_RELEASE: a supervisor's health check of the worker or beat, a
    migration or a key rotation must not fail for it."""
    result = run_manage("check", **{**PRODUCTION, "LIVE_RELEASE": ""})
    assert result.returncode == 0, result.stdout + result.stderr
