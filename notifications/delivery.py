"""Sending queued messages: per channel in order, grouped, rate-limited, retried, logged.

``deliver_due`` claims work per channel under the channel's row lock (``SKIP LOCKED``: one worker
per channel at a time, so a channel's messages go in order and a recovery never overtakes the
failure it resolves). A claimed message is ``sending`` until its lease ends; a worker killed
mid-delivery leaves it to be claimed again after the lease (its idempotency key unchanged, so a
receiver that saw it already can tell). Sends run on a small thread pool, each aborted at its
deadline; the attempt is logged as a ``Delivery`` either way.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.egress import Session

from .choices import MessageKind, MessageStatus
from .messages import group_message, webhook_body
from .models import Channel, Delivery, Message
from .senders import SendResult, encode, send

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10  # about 9 hours of retries: 10 s, 30 s, 90 s, … capped at 1 h
FAILING_AFTER = 5  # failed attempts in a row that flag a channel as failing
MAX_GROUP = 50_000  # pending messages of a channel looked at (and grouped) in one claim
PER_CHANNEL_RUN = 20  # messages a channel may send in one run (the rest wait for the next)
_PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)
_EVENT_KINDS = (MessageKind.FAILURE, MessageKind.RECOVERY, MessageKind.OTHER)


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(10 * 3 ** max(attempts - 1, 0), 3600))


def _bucket(channel: Channel, now: datetime) -> float:
    """Tokens now (a message costs one): refilled at rate_per_hour, at most min(rate, 10)."""
    capacity = float(max(1, min(channel.rate_per_hour, 10)))
    if channel.tokens < 0 or channel.tokens_at is None:
        return capacity
    refill = (now - channel.tokens_at).total_seconds() * channel.rate_per_hour / 3600
    return min(capacity, channel.tokens + refill)


@dataclass
class Job:
    message: Message
    lease: datetime
    body: bytes


def claim(channel_id: int, now: datetime) -> list[Job]:
    """The messages of one channel to send now, marked ``sending`` under a lease."""
    with transaction.atomic():
        channel = (
            Channel.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("environment")
            .filter(pk=channel_id, enabled=True)
            .first()
        )
        if channel is None:
            return []
        pending = list(
            Message.objects.filter(channel=channel, status__in=_PENDING).order_by(
                "created_at", "pk"
            )[:MAX_GROUP]
        )
        if not pending:
            return []
        if any(m.status == MessageStatus.SENDING and m.lease_until > now for m in pending):
            return []  # another worker is still sending; order is kept by waiting
        head = pending[0]
        if head.next_attempt_at > now:
            return []  # its group window or its retry time has not come
        tokens = _bucket(channel, now)
        if tokens < 1:
            return []
        fresh = [m for m in pending if m.attempts == 0 and m.kind in _EVENT_KINDS]
        batch: list[Message]
        if head in fresh and len(fresh) > min(channel.group_threshold, int(tokens)):
            group = group_message(channel, fresh, now)
            group.save()
            Message.objects.filter(pk__in=[m.pk for m in fresh]).update(
                status=MessageStatus.GROUPED, group=group
            )
            links = Message.events.through.objects.filter(message__in=fresh)
            Message.events.through.objects.bulk_create(
                Message.events.through(message_id=group.pk, event_id=event_id)
                for event_id in links.values_list("event_id", flat=True)
            )
            batch = [group]
        else:
            batch = []
            for message in pending[: min(PER_CHANNEL_RUN, int(tokens))]:
                if message.next_attempt_at > now:
                    break
                batch.append(message)
        _add_dependents(batch)
        # a batch is sent in order, each message within its deadline
        lease = now + timedelta(seconds=_deadline() * len(batch) + 30)
        for message in batch:
            message.status = MessageStatus.SENDING
            message.lease_until = lease
            message.attempts += 1
            message.channel = channel
        Message.objects.bulk_update(batch, ["status", "lease_until", "attempts"])
        channel.tokens = tokens - len(batch)
        channel.tokens_at = now
        channel.save(update_fields=["tokens", "tokens_at"])
    return [Job(m, lease, encode(webhook_body(m, now))) for m in batch]


DEPENDENTS_LISTED = 1000  # in a message's body and payload at most


def _add_dependents(batch: list[Message]) -> None:
    """A failure or reminder of a connection lists the connections that depend on it and are
    down now: their own failures were kept quiet for it (``routing.quiet_reason``)."""
    from connections.choices import Status
    from connections.dependencies import children_of

    from .routing import _audience

    for message in batch:
        if message.kind not in (MessageKind.FAILURE, MessageKind.REMINDER) or message.attempts:
            continue
        if message.connection_id is None:
            continue
        children = children_of([message.connection_id]).filter(
            status__in=[Status.DISCONNECTED, Status.NOT_FOUND]
        )
        # only those this channel may hear of: a dependency never carries a name (or a text
        # someone chose as a name) to people who may not see that connection
        heard = _audience(message.channel, set(children.values_list("pk", flat=True)))
        down = list(
            children.filter(pk__in=heard)
            .order_by("name")
            .values("pk", "name", "status")[: DEPENDENTS_LISTED + 1]
        )
        if not down:
            continue
        shown = down[:DEPENDENTS_LISTED]
        names = ", ".join(d["name"] for d in shown[:50])
        more = len(down) - 50 if len(down) > 50 else 0
        message.body += (
            f"\n{len(shown)}{'+' if len(down) > len(shown) else ''} connections that depend on "
            f"it are down too: {names}{f' … and {more} more' if more else ''}"
        )
        message.payload = {
            **message.payload,
            "dependents": [
                {"id": d["pk"], "name": d["name"], "status": d["status"]} for d in shown
            ],
        }
        message.save(update_fields=["body", "payload"])


def record(job: Job, result: SendResult, now: datetime) -> None:
    """Log the attempt and settle the message, if its lease is still this worker's."""
    message = job.message
    with transaction.atomic():
        Delivery.objects.create(
            message=message,
            channel_id=message.channel_id,
            attempt=message.attempts,
            attempted_at=now,
            ok=result.ok,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
        )
        mine = Message.objects.filter(
            pk=message.pk, status=MessageStatus.SENDING, lease_until=job.lease
        )
        if result.ok:
            mine.update(status=MessageStatus.SENT, sent_at=now, lease_until=None)
            Channel.objects.filter(pk=message.channel_id).update(
                consecutive_failures=0, failing_since=None, last_delivery_at=now
            )
            return
        if not result.retryable or message.attempts >= MAX_ATTEMPTS:
            mine.update(status=MessageStatus.FAILED, lease_until=None)
        else:
            mine.update(
                status=MessageStatus.QUEUED,
                lease_until=None,
                next_attempt_at=now + retry_delay(message.attempts),
            )
        channel = Channel.objects.select_for_update().get(pk=message.channel_id)
        channel.consecutive_failures += 1
        if channel.consecutive_failures >= FAILING_AFTER and channel.failing_since is None:
            channel.failing_since = now
            log.warning("notification channel failing channel=%s", channel.pk)
        channel.save(update_fields=["consecutive_failures", "failing_since"])


@dataclass
class _Runner:
    """One channel's batch on a pool thread: its messages one after another, in order."""

    jobs: list[Job]
    results: queue.Queue
    session: Session | None = None
    started: float = 0.0
    done: bool = False
    handed: int = 0  # results taken by the main thread
    given_up: bool = False

    def run(self) -> None:
        from .choices import ChannelKind

        try:
            for n, job in enumerate(self.jobs):
                channel = job.message.channel
                self.session = Session(check=channel.kind != ChannelKind.EMAIL)
                self.started = time.monotonic()
                result = send(
                    channel.kind,
                    channel.config,
                    job.message.title,
                    job.message.body,
                    job.body,
                    job.message.key,
                    self.session,
                )
                self.results.put((self, job, result))
                if not result.ok:
                    # the rest wait: nothing overtakes a message that has not gone out
                    for later in self.jobs[n + 1 :]:
                        self.results.put((self, later, None))
                    return
        finally:
            self.done = True


def _deadline() -> float:
    return settings.NOTIFY_TIMEOUT * 2


def run_batches(batches: list[list[Job]], on_result: Callable[[Job, SendResult | None], None]):
    """Send each channel's batch on a bounded pool, a channel's messages in order, stopping at
    its first failure. Results are handed to ``on_result`` on this thread as they come (None:
    not sent, its turn did not come). A send past its deadline is aborted (its sockets shut);
    a runner that still does not end is given up on, its unsent messages left to their lease."""
    batches = [b for b in batches if b]
    if not batches:
        return
    results: queue.Queue = queue.Queue()
    runners = [_Runner(batch, results) for batch in batches]
    pool = ThreadPoolExecutor(max_workers=min(settings.NOTIFY_SEND_CONCURRENCY, len(runners)))
    expected = sum(len(batch) for batch in batches)
    handed = 0
    try:
        futures = [pool.submit(runner.run) for runner in runners]
        grace = _deadline() + 5
        while handed < expected:
            try:
                runner, job, result = results.get(timeout=0.1)
            except queue.Empty:
                now = time.monotonic()
                for runner in runners:
                    running = not runner.done and not runner.given_up and runner.session
                    if running and now - runner.started > _deadline():
                        runner.session.abort()
                    if running and now - runner.started > grace:
                        # given up on: its messages not yet settled wait for their lease
                        runner.given_up = True
                        handed += len(runner.jobs) - runner.handed
                if all(f.done() for f in futures) and results.empty():
                    break
                continue
            if runner.given_up:
                continue
            runner.handed += 1
            handed += 1
            on_result(job, result)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def release(job: Job) -> None:
    """A claimed message whose turn did not come: queued again as it was."""
    Message.objects.filter(
        pk=job.message.pk, status=MessageStatus.SENDING, lease_until=job.lease
    ).update(status=MessageStatus.QUEUED, lease_until=None, attempts=F("attempts") - 1)


def due_channels(now: datetime) -> list[int]:
    return list(
        Message.objects.filter(status__in=_PENDING)
        .filter(
            Q(status=MessageStatus.QUEUED, next_attempt_at__lte=now)
            | Q(status=MessageStatus.SENDING, lease_until__lte=now)
        )
        .order_by()
        .values_list("channel_id", flat=True)
        .distinct()
    )


def deliver_due(now: datetime | None = None) -> Counter:
    """Claim and send what is due on every channel; returns counts (sent, failed, channels)."""
    stats: Counter = Counter()
    now = now or timezone.now()
    batches: list[list[Job]] = []
    for channel_id in due_channels(now):
        claimed = claim(channel_id, now)
        if claimed:
            stats["channels"] += 1
            batches.append(claimed)

    def settle(job: Job, result: SendResult | None) -> None:
        if result is None:
            release(job)
            stats["waiting"] += 1
            return
        record(job, result, timezone.now())
        stats["sent" if result.ok else "failed"] += 1

    run_batches(batches, settle)
    return stats


def send_test(channel: Channel) -> Delivery:
    """Send a test message now (the "Send test" button) and return its logged attempt. It
    bypasses the rate limit and the queue, and is never retried: the user sees the result."""
    import uuid

    now = timezone.now()
    lease = now + timedelta(seconds=settings.NOTIFY_TIMEOUT * 2 + 30)
    message = Message.objects.create(
        channel=channel,
        key=f"test-{uuid.uuid4().hex}-channel-{channel.pk}",
        kind=MessageKind.TEST,
        title=f"Test message from Meshplay Connections to {channel.name}",
        body="If you can read this, the channel works.",
        status=MessageStatus.SENDING,
        attempts=1,
        lease_until=lease,
        created_at=now,
    )
    message.channel = channel
    job = Job(message, lease, encode(webhook_body(message, now)))
    got: list[SendResult] = []
    run_batches([[job]], lambda _, result: got.append(result))
    result = got[0] if got and got[0] else SendResult(False, f"timed out after {_deadline():g} s")
    if not result.ok:
        result.retryable = False  # a test is shown, not retried
    record(job, result, timezone.now())
    return message.deliveries.get()
