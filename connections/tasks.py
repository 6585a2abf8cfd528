"""Celery entry points only: thin, they take ids and call the modules that do the work."""

import logging
import uuid

from celery import shared_task
from django.conf import settings

from . import history, scheduling

log = logging.getLogger(__name__)

# Each tick claims at most this many batches, so that one tick never hands out more work than
# the workers can take before the claims' lease runs out.
MAX_BATCHES_PER_TICK = 200


@shared_task(ignore_result=True)
def dispatch_due_probes() -> int:
    """Beat, every few seconds: claim due connections and queue them in batches."""
    sent = 0
    for _ in range(MAX_BATCHES_PER_TICK):
        token, ids = scheduling.claim_due(settings.PROBE_BATCH_SIZE)
        if not ids:
            break
        probe_batch.apply_async(args=(str(token), ids), queue="probes")
        sent += len(ids)
    if sent:
        log.info("probe tick dispatched=%d", sent)
    return sent


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
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


@shared_task(ignore_result=True)
def prune_probe_history() -> int:
    return history.prune_probe_history()


@shared_task(ignore_result=True)
def scrape_connected() -> dict:
    """Beat: scrape the summary of every connected Prometheus and Grafana."""
    from . import scrape

    return scrape.scrape_connected()


@shared_task(ignore_result=True)
def discover_clusters() -> int:
    """Beat: queue one discovery pass per connected Kubernetes cluster."""
    from .models import Connection

    clusters = Connection.objects.filter(kind="kubernetes", status="connected").values_list(
        "pk", flat=True
    )
    for pk in clusters:
        discover_cluster.apply_async(args=(pk,), queue="discovery")
    return len(clusters)


@shared_task(ignore_result=True, acks_late=True)
def discover_cluster(pk: int) -> dict:
    from . import discovery
    from .models import Connection

    cluster = Connection.objects.filter(pk=pk, kind="kubernetes", status="connected").first()
    if cluster is None:
        return {}
    report = discovery.discover_cluster(cluster)
    return {"created": len(report.created), "vanished": len(report.vanished)}
