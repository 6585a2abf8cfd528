"""For the local quick start: make sure someone can sign in to a fresh database.

The generated password goes to a file readable by the owner only, never to the terminal or a log.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the superuser 'admin' if the database has none."

    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        where = "the password in DJANGO_SUPERUSER_PASSWORD"
        if not password:
            password = secrets.token_urlsafe(12)
            path = Path(settings.BASE_DIR) / "var" / "initial-admin-password"
            path.parent.mkdir(exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(password + "\n")
            where = f"the password in {path.relative_to(settings.BASE_DIR)}"
        users.create_superuser(username, password=password)
        self.stdout.write(self.style.SUCCESS(f"Sign in as '{username}' with {where}."))
