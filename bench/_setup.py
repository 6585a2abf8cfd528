"""What every benchmark does first: its own PostgreSQL database, made anew and migrated, and
Django set up."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def django_on_postgres(db_name: str, **env: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{PG_URL}/{db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshplay.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("LIVE_RELEASE", "bench")  # required when DEBUG is off
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
