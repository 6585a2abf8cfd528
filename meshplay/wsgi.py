import os

from django.core.wsgi import get_wsgi_application

from core.wsgi import refuse_unreadable_charsets

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshplay.settings")
application = refuse_unreadable_charsets(get_wsgi_application())

# gunicorn runs no system checks: a deploy that names no release (live.E001) must not boot and
# then answer its main pages with 500s
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from live.conditional import release_problem  # noqa: E402

problem = release_problem()
if problem:
    raise ImproperlyConfigured(problem)

# each worker does its one-time work before its first request (meshplay/warmup.py)
if os.environ.get("WARM_UP", "true").lower() not in {"0", "false", "no"}:
    from meshplay.warmup import warm_up

    warm_up()
