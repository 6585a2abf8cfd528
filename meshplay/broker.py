"""How workers live through a broker that goes away: two small changes to Celery's own parts,
each through an extension point (a transport alias, the ``worker_consumer`` setting).

**The Redis transport: a lost connection no longer kills the worker.** kombu 5.7.0's
``Channel.close`` first reads the reply of the BRPOP in flight; with Redis gone that raises, and
the close stops there: the channel is left half closed, its unacknowledged (``acks_late``)
message still held. Celery 5.7.0 then closes the connection a second time (after ``collect()``
has dropped the transport's ``client``), and the half-closed channel's second close restores the
unacknowledged message through a Redis client built from ``transport.client`` — None:
``AttributeError: 'NoneType' object has no attribute 'hostname'`` (``kombu/transport/redis.py``
``Channel._connparams``). That is no connection error, so it escapes Celery's ``ignore_errors``
and the worker exits ("Unrecoverable error"). It happens whenever the broker goes while a batch
runs and a worker process is free (the consumer waits in BRPOP). Here the close goes on past a
failed read, as it does past an empty one, so the second close finds the channel closed. Seen
in a reproduction: 0 of 23 outages survived without it, 32 of 32 with it; no kombu or Celery
release has a fix (5.7.0 is the newest of both; their main branches have the same code).
Celery 5.6.3, which closes once, survived, but hangs on a half-open socket (celery #9705).

**The consumer: it reconnects within a second of the broker's return.** Celery's consumer
retries with kombu's defaults (2 s, growing by 2 s up to 30 s): a minute's outage was noticed
up to 12 s late. Here the pause starts at 0.5 s and grows to at most ``RECONNECT_MAX``; with
``CELERY_BROKER_CONNECTION_MAX_RETRIES = None`` it never gives up.

Remove each when kombu's ``Channel.close`` or Celery's consumer changes:
``tests/test_broker_outage.py`` says whether the worker then survives without it.
"""

from __future__ import annotations

import functools
from queue import Empty
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import transport as kombu_transports
from kombu.transport import redis

RECONNECT_START = 0.5
RECONNECT_STEP = 0.5
RECONNECT_MAX = 1.0


class _ClosesPastAFailedRead:
    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except (Empty, *self.connection_errors):  # gone or empty: nothing more to read
                pass
        super().close()


class Channel(_ClosesPastAFailedRead, redis.Channel):
    pass


class Transport(redis.Transport):
    Channel = Channel


class SentinelChannel(_ClosesPastAFailedRead, redis.SentinelChannel):
    pass


class SentinelTransport(redis.SentinelTransport):
    Channel = SentinelChannel


def use_redis_transport() -> None:
    """``redis://``, ``rediss://`` (and ``redis+socket://``) and ``sentinel://`` brokers use the
    transports above; URLs and log lines stay as they are."""
    for scheme in ("redis", "rediss"):
        kombu_transports.TRANSPORT_ALIASES[scheme] = "meshplay.broker:Transport"
    kombu_transports.TRANSPORT_ALIASES["sentinel"] = "meshplay.broker:SentinelTransport"


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn: Any) -> Any:
        if not isinstance(conn.ensure_connection, functools.partial):
            conn.ensure_connection = functools.partial(
                conn.ensure_connection,
                interval_start=RECONNECT_START,
                interval_step=RECONNECT_STEP,
                interval_max=RECONNECT_MAX,
            )
        return super().ensure_connected(conn)
