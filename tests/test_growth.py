"""Every table is bounded by a setting, pruning finishes in bounded batches, and /metrics costs
a fixed number of queries whatever the amount of history."""

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from connections import tasks
from connections.choices import Status, Trigger
from connections.models import LATENCY_BUCKETS_MS, ConnectionTransition, ProbeResult, ProbeRollup
from connections.probing import history
from connections.probing import outcomes as health
from connections.probing.probes.base import ProbeOutcome

pytestmark = pytest.mark.django_db

HOUR = datetime(2026, 11, 20, 6, tzinfo=UTC)
TOKEN = "growth-metrics-token-0123456789"


@pytest.fixture(params=["set-based", "portable"])
def path(request, monkeypatch):
    """Each test runs the PostgreSQL statement and the portable (SQLite) fallback."""
    if request.param == "set-based" and db.vendor != "postgresql":
        pytest.skip("the set-based path is PostgreSQL's")
    if request.param == "portable":
        monkeypatch.setattr(history, "_set_based", lambda: False)
    return request.param


def results(conn, n, *, start=HOUR, step=timedelta(minutes=1), seed=0):
    """``n`` results of ``conn``, one per ``step`` from ``start``: some failed, some without a
    latency (a connect error has none)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ok = rng.random() > 0.2
        latency = None if not ok and rng.random() < 0.5 else round(rng.uniform(1, 900), 3)
        rows.append(
            ProbeResult(connection=conn, checked_at=start + i * step, ok=ok, latency_ms=latency)
        )
    return ProbeResult.objects.bulk_create(rows)


def hourly(rows):
    """What the roll-ups of ``rows`` must say, per (connection, hour)."""
    expected = {}
    for row in rows:
        key = (row.connection_id, row.checked_at.replace(minute=0, second=0, microsecond=0))
        e = expected.setdefault(key, {"ok": 0, "failed": 0, "sum": 0.0, "n": 0, "max": None})
        e["ok" if row.ok else "failed"] += 1
        if row.latency_ms is not None:
            e["sum"] += row.latency_ms
            e["n"] += 1
            e["max"] = row.latency_ms if e["max"] is None else max(e["max"], row.latency_ms)
    return expected


def stored_rollups():
    return {
        (r.connection_id, r.hour): {
            "ok": r.ok_count,
            "failed": r.failed_count,
            "sum": pytest.approx(r.latency_sum_ms),
            "n": r.latency_count,
            "max": r.latency_max_ms,
        }
        for r in ProbeRollup.objects.all()
    }


def test_pruning_keeps_exactly_the_newest_per_connection_and_rollups_add_up(path, make_connection):
    conns = [make_connection(Status.CONNECTED) for _ in range(4)]
    made = {c.pk: results(c, n, seed=c.pk) for c, n in zip(conns, (250, 30, 31, 400), strict=True)}
    keep = 30
    folded = history.prune_probe_history(keep=keep)
    assert folded == (250 - keep) + 0 + 1 + (400 - keep)
    gone = []
    for pk, rows in made.items():
        newest = sorted(rows, key=lambda r: r.checked_at)[-keep:]
        kept = set(ProbeResult.objects.filter(connection_id=pk).values_list("pk", flat=True))
        assert kept == {r.pk for r in newest}
        gone += [r for r in rows if r.pk not in kept]
    assert stored_rollups() == hourly(gone)
    # the means are the raw means; the counts add up to what was folded
    rollup = ProbeRollup.objects.get(connection=conns[0], hour=HOUR)
    first_hour = [r.latency_ms for r in made[conns[0].pk][:60] if r.latency_ms is not None]
    assert rollup.latency_mean_ms == pytest.approx(sum(first_hour) / len(first_hour))
    assert sum(r.ok_count + r.failed_count for r in ProbeRollup.objects.all()) == folded
    assert history.prune_probe_history(keep=keep) == 0


def test_new_old_results_merge_into_the_same_hour(path, make_connection):
    conn = make_connection(Status.CONNECTED)
    first = results(conn, 40, seed=1)  # 06:00–06:39
    history.prune_probe_history(keep=10)
    later = results(conn, 20, start=HOUR + timedelta(minutes=40), seed=2)  # 06:40–06:59
    assert history.prune_probe_history(keep=10) == 20
    assert ProbeRollup.objects.count() == 1
    kept = set(ProbeResult.objects.values_list("pk", flat=True))
    assert stored_rollups() == hourly([r for r in first + later if r.pk not in kept])


def test_keeping_none_folds_everything(path, make_connection):
    conn = make_connection(Status.CONNECTED)
    rows = results(conn, 90, seed=3)
    assert history.prune_probe_history(keep=0) == 90
    assert not ProbeResult.objects.exists()
    assert stored_rollups() == hourly(rows)


def test_results_sharing_the_cutoff_time_are_kept_together(path, make_connection):
    conn = make_connection(Status.CONNECTED)
    results(conn, 10)
    at = HOUR + timedelta(hours=1)
    ProbeResult.objects.bulk_create(
        ProbeResult(connection=conn, checked_at=at, ok=True) for _ in range(3)
    )
    # keep 2: the 2nd newest shares its time with the newest and a third: all three stay
    assert history.prune_probe_history(keep=2) == 10
    assert ProbeResult.objects.count() == 3


def test_tiny_batches_finish_everything_across_runs(path, make_connection, monkeypatch, settings):
    """Runs of one statement each (budget 0), seven rows per statement, two connections per
    chunk: each run resumes where the last stopped, none does more than its batch, and the walk
    ends where a single unbounded run would."""
    monkeypatch.setattr(history, "CONNECTIONS_PER_STATEMENT", 2)
    settings.PROBE_HISTORY_KEEP = 5
    settings.PROBE_ROLLUP_RETENTION = 3600
    now = HOUR + timedelta(hours=10)
    conns = [make_connection(Status.CONNECTED) for _ in range(5)]
    made = []
    for i, conn in enumerate(conns):
        made += results(conn, 12 + 3 * i, step=timedelta(minutes=7), seed=i)
    runs, resume = 0, None
    while True:
        report = history.prune(now=now, batch=7, budget=0, resume=resume)
        runs += 1
        assert report["folded"] + report["expired"] <= 7
        resume = report["resume"]
        if resume is None:
            break
        assert runs < 500
    assert runs > 10  # it did take many runs
    for conn in conns:
        assert conn.probe_results.count() == 5
    kept = set(ProbeResult.objects.values_list("pk", flat=True))
    cutoff = now - timedelta(seconds=3600)
    folded = hourly([r for r in made if r.pk not in kept])
    assert stored_rollups() == {k: v for k, v in folded.items() if k[1] >= cutoff}
    assert history.prune(now=now) == {"folded": 0, "expired": 0, "resume": None}


def test_rollups_past_retention_go(path, make_connection, settings):
    settings.PROBE_ROLLUP_RETENTION = 90 * 24 * 3600
    now = timezone.now()
    conns = [make_connection(Status.CONNECTED) for _ in range(3)]
    for conn in conns:
        ProbeRollup.objects.bulk_create(
            ProbeRollup(
                connection=conn, hour=now - timedelta(days=100) + timedelta(hours=h), ok_count=1
            )
            for h in range(0, 24 * 20, 6)
        )
    cutoff = now - timedelta(days=90)
    old = ProbeRollup.objects.filter(hour__lt=cutoff).count()
    assert 0 < old < ProbeRollup.objects.count()
    assert history.prune_rollups(now=now, batch=4) == old
    assert not ProbeRollup.objects.filter(hour__lt=cutoff).exists()
    assert ProbeRollup.objects.filter(hour__gte=cutoff).count() == 3 * 80 - old


@pytest.mark.postgres
def test_the_task_runs_within_its_budget_and_a_second_run_steps_aside(make_connection, settings):
    conn = make_connection(Status.CONNECTED)
    results(conn, 50)
    settings.PROBE_HISTORY_KEEP = 20
    settings.PRUNE_TIME_BUDGET = 10_000  # clamped inside the task's soft limit
    assert tasks.prune_probe_history.soft_time_limit == 600
    assert tasks.prune_probe_history() == {"folded": 30, "expired": 0, "resume": None}
    results(conn, 5, start=HOUR - timedelta(hours=1))
    dsn = db.settings_dict
    other = psycopg.connect(
        host=dsn["HOST"],
        port=dsn["PORT"] or 5432,
        user=dsn["USER"],
        dbname=dsn["NAME"],
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [history.LOCK_KEY])
        assert history.prune()["skipped"]
        assert conn.probe_results.count() == 25
        other.execute("SELECT pg_advisory_unlock(%s)", [history.LOCK_KEY])
        assert history.prune()["folded"] == 5
    finally:
        other.close()


@pytest.mark.postgres
def test_a_run_out_of_time_queues_the_next_where_it_stopped(make_connection, settings, monkeypatch):
    """The task with no time at all: one statement per run, each run queueing the next with
    where it stopped, until the walk is done; then nothing more is queued."""
    monkeypatch.setattr(history, "CONNECTIONS_PER_STATEMENT", 1)
    settings.PRUNE_TIME_BUDGET = 0
    settings.PROBE_HISTORY_KEEP = 10
    conns = sorted((make_connection(Status.CONNECTED) for _ in range(3)), key=lambda c: c.pk)
    for conn in conns:
        results(conn, 30, seed=conn.pk)
    queued = []
    monkeypatch.setattr(
        tasks.prune_probe_history, "apply_async", lambda kwargs: queued.append(kwargs["resume"])
    )
    first = tasks.prune_probe_history()
    assert first["folded"] == 20 and queued == [["fold", conns[0].pk]]
    assert [c.probe_results.count() for c in conns] == [10, 30, 30]
    runs = 1
    while queued:
        tasks.prune_probe_history(resume=queued.pop())
        runs += 1
        assert runs < 50
    assert [c.probe_results.count() for c in conns] == [10, 10, 10]
    assert runs >= 4  # a run per connection, then the roll-ups' walk


# ---- /metrics ----------------------------------------------------------------------------


def scrape(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return response.content.decode()


def samples(text):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def record(conns, rounds, seed):
    """``rounds`` probe results for each of ``conns``, applied as the workers apply them (some
    failed, some without a latency); what was recorded, as (kind, ok, latency)."""
    rng = random.Random(seed)
    recorded = []
    for _ in range(rounds):
        pairs = []
        for conn in conns:
            conn.refresh_from_db()
            ok = rng.random() > 0.2
            latency = None if not ok and rng.random() < 0.5 else round(rng.uniform(1, 900), 3)
            outcome = ProbeOutcome(
                ok=ok, latency_ms=latency, error_class="" if ok else "timeout", error="slow"
            )
            pairs.append((conn, outcome))
            recorded.append((conn.kind, ok, latency))
        assert health.apply_outcomes(pairs)["applied"] == len(conns)
    return recorded


def test_metrics_take_a_fixed_number_of_queries(
    client, make_connection, settings, django_assert_max_num_queries
):
    settings.METRICS_TOKEN = TOKEN
    record([make_connection(Status.CONNECTED, kind="http")], 3, seed=1)
    with CaptureQueriesContext(db) as small:
        scrape(client)
    kinds = ["http", "prometheus", "grafana", "kubernetes"] * 5
    record([make_connection(Status.CONNECTED, kind=kind) for kind in kinds], 30, seed=2)
    make_connection(Status.DELETED)
    make_connection(Status.IGNORED, kind="grafana")
    with django_assert_max_num_queries(4), CaptureQueriesContext(db) as large:
        scrape(client)
    assert len(small) == len(large)


def test_metrics_numbers_are_right_and_never_go_down(client, make_connection, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.PROBE_HISTORY_KEEP = 5
    settings.PROBE_ROLLUP_RETENTION = 3600
    conns = [make_connection(Status.CONNECTED, kind=k) for k in ("http", "http", "prometheus")]
    recorded = record(conns, 40, seed=3)
    make_connection(Status.DELETED, kind="grafana")
    late = make_connection(Status.DISCONNECTED)
    late.__class__.objects.filter(pk=late.pk).update(
        next_probe_at=timezone.now() - timedelta(hours=1)
    )
    before = samples(scrape(client))
    # pruning folds the raw results into roll-ups and expires those: the counters stay
    history.prune(now=timezone.now() + timedelta(days=2))
    assert ProbeResult.objects.count() == 5 * 3
    text = scrape(client)
    assert "# TYPE meshplay_probe_latency_ms histogram" in text
    assert "_gcount" not in text and "_gsum" not in text
    found = samples(text)
    counted = {k: v for k, v in found.items() if k[0].startswith("meshplay_probe_")}
    assert counted == {k: v for k, v in before.items() if k[0].startswith("meshplay_probe_")}

    for kind in ("http", "prometheus"):
        mine = [r for r in recorded if r[0] == kind]
        for ok in (True, False):
            key = ("meshplay_probe_results_total", (("kind", kind), ("ok", str(ok).lower())))
            assert found[key] == sum(1 for r in mine if r[1] == ok)
        latencies = [r[2] for r in mine if r[2] is not None]
        label = (("kind", kind),)
        assert found[("meshplay_probe_latency_ms_count", label)] == len(latencies)
        assert found[("meshplay_probe_latency_ms_sum", label)] == pytest.approx(sum(latencies))
        for bound in LATENCY_BUCKETS_MS:
            le = (("kind", kind), ("le", str(bound)))
            key = ("meshplay_probe_latency_ms_bucket", le)
            assert found[key] == sum(1 for v in latencies if v <= bound), bound
        inf = ("meshplay_probe_latency_ms_bucket", (("kind", kind), ("le", "+Inf")))
        assert found[inf] == len(latencies)
    transitions = ConnectionTransition.objects.filter(trigger=Trigger.PROBE).count()
    assert transitions > 0  # 20% failures: some connections went down and came back
    assert found[("meshplay_transitions_total", (("trigger", "probe"),))] == transitions
    assert found[("meshplay_connections", (("kind", "grafana"), ("state", "deleted")))] == 1
    assert found[("meshplay_probe_backlog", ())] == 1
    assert found[("meshplay_tombstones", ())] == 1
    assert found[("meshplay_last_beat_tick_timestamp_seconds", ())] == 0
