"""The Celery application; tasks live in each app's ``tasks.py``."""

import os

from celery import Celery

from meshplay.broker import use_redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshplay.settings")
use_redis_transport()  # see meshplay/broker.py: a lost Redis connection must not stop a worker

app = Celery("meshplay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
