"""Settings for the test suite: the real PostgreSQL and Redis of the machine.

Outside CI, a machine without PostgreSQL falls back to SQLite and the tests marked ``postgres``
are skipped (likewise Redis and ``redis``). With CI=true a missing service is an error, not a skip.
"""

import os
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403  (test settings are the project's settings, plus these)
from .settings import BASE_DIR, env

CI = env.bool("CI", default=False)
TEST_DATABASE_URL = env.str("TEST_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test")


def service_reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


if service_reachable(TEST_DATABASE_URL, 5432):
    DATABASES = {"default": env.db_url_config(TEST_DATABASE_URL)}
    TESTS_ON_POSTGRES = True
elif CI:
    raise ImproperlyConfigured(f"CI=true: PostgreSQL is required at {TEST_DATABASE_URL}.")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "test-db.sqlite3",
            "TEST": {"NAME": BASE_DIR / "test-db.sqlite3"},
        }
    }
    TESTS_ON_POSTGRES = False

TEST_REDIS_URL = env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/12")
if service_reachable(TEST_REDIS_URL, 6379):
    CELERY_BROKER_URL = TEST_REDIS_URL
    CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": TEST_REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            "KEY_PREFIX": f"test-{os.getpid()}",
        }
    }
    TESTS_WITH_REDIS = True
elif CI:
    raise ImproperlyConfigured(f"CI=true: Redis is required at {TEST_REDIS_URL}.")
else:
    CELERY_BROKER_URL = "memory://"
    TESTS_WITH_REDIS = False

DEBUG = False
LIVE_RELEASE = "tests"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CREDENTIAL_KEYS = [
    "8Z2mAaTqj0Y8-6cWJ8m7G0Gm1m3X9Y4b3W4b0R0Z6aE=",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECURE_SSL_REDIRECT = False
# The tests never reach past loopback, whatever a test or a fuzzer types into a URL.
PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
# ...and no name lookup leaves it either: the probes' resolver asks a loopback port where no
# DNS server listens (names in /etc/hosts, like localhost, still resolve; the DNS tests start
# a server of their own)
PROBE_DNS_SERVERS = ["127.0.0.1:1"]
