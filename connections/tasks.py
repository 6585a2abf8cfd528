"""Celery entry points only: thin, they take ids and call the modules that do the work."""

import logging
import math
import uuid

from celery import shared_task
from django.conf import settings

from .models import ProbeRound, queue_of
from .probing import history, rounds, scheduling, uptime

log = logging.getLogger(__name__)


# Every task has a soft limit (an exception the task can end on) and a hard one (the worker
# process is killed): no endpoint, however slow, holds a worker for longer.
def _limits(soft: float) -> dict:
    return {"soft_time_limit": soft, "time_limit": soft + 30}


@shared_task(ignore_result=True, **_limits(30))
def dispatch_due_probes() -> int:
    """Beat, every tick: claim the connections due before the next tick and queue them in
    batches; each batch starts each probe at its due time."""
    sent = 0
    by_location = rounds.active()
    if by_location:
        rounds.close_overdue()
        room = settings.PROBE_BATCHES_PER_TICK
    else:
        # batches still queued hold their claims: a claim whose lease ran out in the queue is
        # claimed and sent again, and the batch that finally runs finds nothing of its own
        room = settings.PROBE_BATCHES_PER_TICK - queued("probes")
    # at most PROBE_BATCHES_PER_TICK batches waiting: what the workers can start before the
    # claims' lease runs out; the rest stays due and is claimed at the next tick
    for _ in range(max(room, 0)):
        token, ids = scheduling.claim_due(settings.PROBE_BATCH_SIZE, horizon=settings.PROBE_TICK)
        if not ids:
            break
        if by_location:
            send_round(token, ids)
        else:
            probe_batch.apply_async(args=(str(token), ids), queue="probes")
        sent += len(ids)
    if sent:
        log.info("probe tick dispatched=%d", sent)
    return sent


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    **_limits(
        # waiting for the due times, then each wave of PROBE_CONCURRENCY probes at most the
        # longest timeout, then the last write
        settings.PROBE_TICK
        + math.ceil(settings.PROBE_BATCH_SIZE / settings.PROBE_CONCURRENCY)
        * max(total for _, total in settings.PROBE_TIMEOUTS.values())
        + 30
    ),
)
def probe_batch(token: str, ids: list[int]) -> dict:
    stats = scheduling.run_batch(uuid.UUID(token), ids)
    log.info(
        "probe batch size=%d ok=%d failed=%d transitions=%d stale=%d skipped=%d",
        len(ids),
        stats["ok"],
        stats["failed"],
        stats["transitions"],
        stats["stale"],
        stats["skipped"],
    )
    return dict(stats)


def queued(queue: str) -> int:
    """Messages waiting in ``queue`` (0 when the broker cannot say: as if none waited)."""
    from celery import current_app

    try:
        with current_app.pool.acquire(block=True, timeout=2) as connection:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
    except Exception as exc:  # noqa: BLE001 - a missing queue, a broker away: nothing waits
        log.debug("queue %s: length unknown (%s)", queue, exc)
        return 0


def send_round(token: uuid.UUID, ids: list[int]) -> dict:
    """Send a claimed batch to its locations (probing/rounds.py), and its close for the
    deadline."""

    def send(location: str, pks: list[int], deadline) -> None:
        # no broker expiry: it is judged by the worker's clock, which may be off; a share that
        # arrives after its round closed finds no round and ends at once
        probe_location_batch.apply_async(args=(str(token), location, pks), queue=queue_of(location))

    figures = rounds.dispatch(token, ids, send)
    deadline = ProbeRound.objects.filter(token=token).values_list("deadline", flat=True).first()
    if deadline is not None:
        close_round.apply_async(args=(str(token),), eta=deadline)
    return figures


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    **_limits(
        # a round lasts at most the tick (the due times), the timeout and the grace
        settings.PROBE_TICK
        + math.ceil(settings.PROBE_BATCH_SIZE / settings.PROBE_CONCURRENCY)
        * max(total for _, total in settings.PROBE_TIMEOUTS.values())
        + settings.ROUND_GRACE
        + 30
    ),
)
def probe_location_batch(self, token: str, location: str, ids: list[int]) -> dict:
    """A location's share of a round, on its own queue (``probes.<location>``)."""
    stats = rounds.run_location_batch(uuid.UUID(token), location, ids, self.request.hostname)
    log.info(
        "location batch location=%s size=%d recorded=%d redelivered=%d transitions=%d late=%d",
        location,
        len(ids),
        stats["recorded"],
        stats["redelivered"],
        stats["transitions"],
        stats["late"],
    )
    return dict(stats)


@shared_task(ignore_result=True, **_limits(60))
def close_round(token: str) -> dict:
    """A round's deadline: decide what its locations have not all answered."""
    return dict(rounds.close(uuid.UUID(token)))


PRUNE_SOFT_LIMIT = 600


@shared_task(ignore_result=True, **_limits(PRUNE_SOFT_LIMIT))
def prune_probe_history(resume: list | None = None) -> dict:
    """Beat: fold raw results beyond PROBE_HISTORY_KEEP into hourly roll-ups and expire roll-ups
    past PROBE_ROLLUP_RETENTION, in bounded batches. A run stops at its time budget (kept a
    minute inside the soft limit) and queues the next run where it stopped, until done."""
    budget = min(settings.PRUNE_TIME_BUDGET, PRUNE_SOFT_LIMIT - 60)
    report = history.prune(budget=budget, resume=resume)
    return _go_on(prune_probe_history, "prune", report, ("folded", "expired"))


def _go_on(task, name: str, report: dict, counts: tuple[str, ...]) -> dict:
    """Log a bounded walk's run and queue the next one where it stopped (``resume``), if any."""
    figures = " ".join(f"{key}={report[key]}" for key in counts)
    log.info(
        "%s %s resume=%s skipped=%s",
        name,
        figures,
        report["resume"],
        report.get("skipped", False),
    )
    if report["resume"] is not None:
        task.apply_async(kwargs={"resume": report["resume"]})
    return report


UPTIME_SOFT_LIMIT = 300


@shared_task(ignore_result=True, **_limits(UPTIME_SOFT_LIMIT))
def refresh_uptime(resume: int | None = None) -> dict:
    """Beat: refresh every connection's uptime and mean latency from its probe history, a
    chunk at a time, one run at a time; a run that meets its budget queues the next where it
    stopped (and a run beat starts meanwhile goes on from there, never from the start)."""
    budget = min(settings.UPTIME_TIME_BUDGET, UPTIME_SOFT_LIMIT - 60)
    report = uptime.refresh(after=resume, budget=budget)
    return _go_on(refresh_uptime, "uptime", report, ("seen", "written"))


@shared_task(ignore_result=True, **_limits(120))
def scrape_connected() -> dict:
    """Beat: scrape the summary of every connected Prometheus and Grafana."""
    from .probing import scrape

    return scrape.scrape_connected()


@shared_task(ignore_result=True, **_limits(30))
def discover_clusters() -> int:
    """Beat: queue one discovery pass per connected Kubernetes cluster."""
    from .models import Connection

    clusters = Connection.objects.filter(kind="kubernetes", status="connected").values_list(
        "pk", flat=True
    )
    for pk in clusters:
        discover_cluster.apply_async(args=(pk,), queue="discovery")
    return len(clusters)


@shared_task(ignore_result=True, acks_late=True, **_limits(settings.DISCOVERY_TIME_LIMIT))
def discover_cluster(pk: int) -> dict:
    from . import discovery
    from .models import Connection

    cluster = Connection.objects.filter(pk=pk, kind="kubernetes", status="connected").first()
    if cluster is None:
        return {}
    report = discovery.discover_cluster(cluster)
    return {"created": len(report.created), "vanished": len(report.vanished)}
