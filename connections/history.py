"""Bounded probe history: the newest raw results per connection, older ones rolled up per hour."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum, Window
from django.db.models.functions import RowNumber, TruncHour

from .models import ProbeResult, ProbeRollup

CHUNK = 5000


def prune_probe_history(keep: int | None = None, limit: int = 200_000) -> int:
    """Fold results beyond the newest ``keep`` per connection into hourly roll-ups; delete them."""
    keep = keep if keep is not None else settings.PROBE_HISTORY_KEEP
    ranked = ProbeResult.objects.annotate(
        rank=Window(
            RowNumber(),
            partition_by=[F("connection_id")],
            order_by=[F("checked_at").desc(), F("pk").desc()],
        )
    )
    old_ids = list(ranked.filter(rank__gt=keep).values_list("pk", flat=True)[:limit])
    for start in range(0, len(old_ids), CHUNK):
        _roll_up(old_ids[start : start + CHUNK])
    return len(old_ids)


def _roll_up(ids: list[int]) -> None:
    with transaction.atomic():
        hours = (
            ProbeResult.objects.filter(pk__in=ids)
            .values("connection_id", hour=TruncHour("checked_at"))
            .annotate(
                ok_n=Count("pk", filter=Q(ok=True)),
                failed_n=Count("pk", filter=Q(ok=False)),
                latency_sum=Sum("latency_ms"),
                latency_count=Count("latency_ms"),
                latency_max=Max("latency_ms"),
            )
        )
        for row in hours:
            rollup, _ = ProbeRollup.objects.select_for_update().get_or_create(
                connection_id=row["connection_id"], hour=row["hour"]
            )
            rollup.ok_count += row["ok_n"]
            rollup.failed_count += row["failed_n"]
            rollup.latency_sum_ms += row["latency_sum"] or 0
            rollup.latency_count += row["latency_count"]
            maxima = [m for m in (rollup.latency_max_ms, row["latency_max"]) if m is not None]
            rollup.latency_max_ms = max(maxima) if maxima else None
            rollup.save()
        ProbeResult.objects.filter(pk__in=ids).delete()
