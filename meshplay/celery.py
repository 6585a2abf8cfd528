"""The Celery application; tasks live in each app's ``tasks.py``."""

import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from meshplay.broker import use_redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshplay.settings")
use_redis_transport()  # see meshplay/broker.py: a lost Redis connection must not stop a worker

app = Celery("meshplay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


_heartbeat_stop = None


@worker_ready.connect
def _location_heartbeat(sender=None, **_):
    """A worker of a location (``PROBE_LOCATION``) reports that it is there
    (connections/probing/heartbeat.py)."""
    global _heartbeat_stop
    from django.conf import settings

    if not settings.PROBE_LOCATION:
        return
    import logging
    import threading

    from connections.models import queue_of
    from connections.probing import heartbeat

    wanted = queue_of(settings.PROBE_LOCATION)
    consumed = set(getattr(sender.app.amqp.queues, "consume_from", None) or {})
    if wanted not in consumed:
        # it would say it is there and never take a round: it stays unknown instead
        logging.getLogger(__name__).error(
            "PROBE_LOCATION=%s but this worker does not consume %s (-Q %s): no heartbeat",
            settings.PROBE_LOCATION,
            wanted,
            ",".join(sorted(consumed)) or "(none)",
        )
        return

    def receiving() -> bool:
        connection = getattr(sender, "connection", None)
        return connection is not None and bool(connection.connected)

    _heartbeat_stop = threading.Event()
    heartbeat.start(sender.hostname, settings.PROBE_LOCATION, _heartbeat_stop, receiving)


@worker_shutdown.connect
def _location_heartbeat_stop(**_):
    if _heartbeat_stop is not None:
        _heartbeat_stop.set()
