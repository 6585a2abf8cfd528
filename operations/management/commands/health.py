"""Liveness checks for what a process manager runs: exit 0 when healthy, 1 (and why) when not.

- ``health --worker probes@host``: the named worker answers a ping through the broker. A worker
  that is alive but no longer consumes (stuck, or stopped) does not answer: systemd's timer or
  Kubernetes' liveness probe then restarts it (docs/operations.md).
- ``health --beat``: beat sent the probe dispatch lately. Beat writes the times it sent tasks to
  the database every few minutes (django-celery-beat's sync), so "lately" is six minutes: a
  beat that stopped is caught within that long (a stalled prober sooner, by ``--probing``).
- ``health --probing``: probing is not stalled (connections.probing.state).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

BEAT_SYNC_SLACK = 360  # seconds: django-celery-beat writes last_run_at at least every 5 min


class Command(BaseCommand):
    help = "Exit 0 if the named worker, beat or probing is healthy, else 1 with the reason."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--worker", help="a worker's node name, e.g. probes@$(hostname)")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
        parser.add_argument("--beat", action="store_true", help="beat dispatched lately")
        parser.add_argument("--probing", action="store_true", help="probing is not stalled")

    def handle(self, *args, worker: str | None, timeout: float, beat: bool, probing: bool, **_):
        if not (worker or beat or probing):
            raise CommandError("say what to check: --worker NAME, --beat or --probing")
        problems = []
        if worker:
            problems += self._worker(worker, timeout)
        if beat:
            problems += self._beat()
        if probing:
            from connections.probing.state import probing_state

            state = probing_state()
            if state.state == "stalled":
                problems.append(f"probing {state}")
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
        self.stdout.write("ok")

    def _worker(self, name: str, timeout: float) -> list[str]:
        from celery import current_app as app  # the project's (meshplay/celery.py)

        try:
            answers = app.control.ping(destination=[name], timeout=timeout) or []
        except Exception as exc:  # the broker itself is the problem: say so
            return [f"the broker does not answer ({type(exc).__name__})"]
        if not any(name in answer for answer in answers):
            return [f"worker {name} did not answer within {timeout:g} s"]
        return []

    def _beat(self) -> list[str]:
        from django_celery_beat.models import PeriodicTask

        last = (
            PeriodicTask.objects.filter(task="connections.tasks.dispatch_due_probes")
            .values_list("last_run_at", flat=True)
            .first()
        )
        late = timezone.now() - timezone.timedelta(
            seconds=max(BEAT_SYNC_SLACK, 3 * settings.PROBE_TICK)
        )
        if last is None or last < late:
            return [f"beat has not dispatched probes since {last or 'ever'}"]
        return []
