"""What docs/operations.md tells an operator to install: the systemd units and the Kubernetes
manifest run the Procfile's commands, systemd accepts the units, and the liveness check they
rely on tells a consuming worker from one that is alive but no longer consumes."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.db import connection as db

from tests.services import CeleryWorker, RedisServer, procfile_command, require_binary

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "docs/deploy/systemd"
KUBERNETES = ROOT / "docs/deploy/kubernetes/meshplay.yaml"
UNITS = {"worker": "meshplay-worker", "discovery": "meshplay-discovery", "beat": "meshplay-beat"}


def _celery_args(words: list[str]) -> list[str]:
    """A command line from ``celery`` on, whatever runs it (a venv's path, ``python -m``)."""
    start = next(i for i, word in enumerate(words) if word.endswith("celery"))
    return ["celery", *words[start + 1 :]]


def _exec_start(unit: str) -> list[str]:
    text = (SYSTEMD / f"{unit}.service").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart=").replace("%H", "%h"))


@pytest.mark.parametrize("process", UNITS)
def test_the_systemd_units_run_the_procfiles_commands(process):
    assert _celery_args(_exec_start(UNITS[process])) == _celery_args(procfile_command(process))


def test_the_kubernetes_manifest_runs_the_procfiles_commands_with_liveness_checks():
    deployments = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"]
        for d in yaml.safe_load_all(KUBERNETES.read_text())
    }
    assert set(deployments) == {"web", *UNITS}
    for process in UNITS:
        (container,) = deployments[process]["containers"]
        assert _celery_args(container["command"]) == _celery_args(procfile_command(process))
        probe = " ".join(container["livenessProbe"]["exec"]["command"])
        assert "manage.py health" in probe
    node = {"worker": "probes@$HOSTNAME", "discovery": "discovery@$HOSTNAME"}
    for process, name in node.items():
        (container,) = deployments[process]["containers"]
        assert f"--worker {name}" in " ".join(container["livenessProbe"]["exec"]["command"])
    (web,) = deployments["web"]["containers"]
    assert web["command"][:2] == ["gunicorn", "meshplay.wsgi"]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_systemd_accepts_every_unit(tmp_path):
    """``systemd-analyze verify`` in a root where the app's executables exist."""
    analyze = require_binary("systemd-analyze")
    bin_dir = tmp_path / "opt/meshplay/.venv/bin"
    bin_dir.mkdir(parents=True)
    for name in ("celery", "gunicorn", "python"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "bin").mkdir()
    shutil.copy(Path("/bin/sh").resolve(), tmp_path / "bin/sh")
    system = Path("/usr/lib/systemd/system")  # the targets the units name (multi-user, …)
    shutil.copytree(system, tmp_path / "usr/lib/systemd/system", symlinks=True)
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    for path in SYSTEMD.iterdir():
        (units / path.name).write_text(path.read_text())
    done = subprocess.run(
        [analyze, "verify", "--man=no", f"--root={tmp_path}"]
        + [str(units / path.name) for path in sorted(SYSTEMD.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line.strip() and "meshplay" in line
    ]
    assert not problems, problems


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_liveness_check_tells_a_stopped_consumer_from_a_working_one():
    broker = RedisServer().start()
    worker = CeleryWorker(db.settings_dict["NAME"], broker.url).start(beat=False, as_deployed=True)
    node = f"probes@{os.uname().nodename}"

    def health(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "health", *args],
            cwd=ROOT,
            env=worker.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        answered = health("--worker", node, "--timeout", "10")
        assert answered.returncode == 0, (answered.stdout, answered.stderr, worker.log()[-3000:])
        os.killpg(worker.process.pid, signal.SIGSTOP)  # alive, but consuming nothing
        silent = health("--worker", node, "--timeout", "3")
        assert silent.returncode == 1
        assert f"worker {node} did not answer within 3 s" in silent.stderr
        os.killpg(worker.process.pid, signal.SIGCONT)
        unknown = health("--worker", "probes@nowhere", "--timeout", "2")
        assert unknown.returncode == 1
    finally:
        os.killpg(worker.process.pid, signal.SIGCONT)
        worker.stop()
        broker.stop()
    nothing = health()
    assert nothing.returncode != 0 and "say what to check" in nothing.stderr
