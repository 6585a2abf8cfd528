"""End to end for real: a Prometheus killed and restarted under beat -> Redis -> a Celery
worker -> probes -> PostgreSQL -> the notify task -> a signed webhook receiver."""

import pytest
from django.utils import timezone

from connections.choices import Status
from connections.models import Connection, ProbeResult
from notifications import channels
from notifications.models import Event
from notifications.periodic import ensure_periodic_tasks as ensure_notify_schedule
from tests.services import Prometheus, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

NOTIFY = "notifications.tasks.notify"


def probed_and_notified_again(worker, conn, *, ok: bool) -> None:
    """Wait for two more probes of ``conn`` (``ok`` or failed), then for a run of the notify task
    that started after them: whatever they could have sent has been sent by then."""
    probes = ProbeResult.objects.filter(connection=conn, ok=ok)
    before = probes.count()
    wait_until(lambda: probes.count() >= before + 2, 30, message=worker.log)
    worker.wait_for_a_new_run(NOTIFY)


def test_a_killed_endpoint_sends_one_failure_and_on_its_return_one_recovery(
    owner,
    make_connection,
    workers,
    beat_every_second,
    receiver,
    settings,
):
    settings.NOTIFY_TICK = 1
    ensure_notify_schedule()
    prometheus = Prometheus().start()
    try:
        channel, receiver.secret = channels.create_channel(
            owner, name="ops", kind="webhook", destination=receiver.url, group_window=0
        )
        conn = make_connection(
            Status.CONNECTED, managed=True, kind="prometheus", url=prometheus.url, name="prom"
        )
        Connection.objects.filter(pk=conn.pk).update(
            probe_interval=1, failure_threshold=2, next_probe_at=timezone.now()
        )
        worker = workers()

        prometheus.stop()
        wait_until(lambda: len(receiver.received) >= 1, 60, message=worker.log)
        probed_and_notified_again(worker, conn, ok=False)  # more failed probes, more ticks:
        assert [r["body"]["kind"] for r in receiver.received] == ["failure"]  # nothing more sent
        prometheus.start()
        wait_until(lambda: len(receiver.received) >= 2, 60, message=worker.log)
        probed_and_notified_again(worker, conn, ok=True)
    finally:
        prometheus.close()
    bodies = [r["body"] for r in receiver.received]
    assert [b["kind"] for b in bodies] == ["failure", "recovery"]
    assert all(r["signed"] for r in receiver.received)
    assert bodies[0]["events"][0]["to"] == "disconnected"
    assert bodies[1]["events"][0]["to"] == "connected"
    assert not Event.objects.filter(routed_at__isnull=True).exists()
