"""Which installed apps are the project's own (not Django's or a library's): the apps whose
templates a worker compiles as it starts and whose Python the live ETags digest."""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings

LIBRARY_FOLDERS = frozenset({"site-packages", "dist-packages", ".venv"})


def own_app_folders() -> list[Path]:
    """The folders of the project's own apps, resolved, in INSTALLED_APPS order."""
    base = Path(settings.BASE_DIR).resolve()
    folders = []
    for config in apps.get_app_configs():
        root = Path(config.path).resolve()
        if root.is_relative_to(base) and not LIBRARY_FOLDERS & set(root.parts):
            folders.append(root)
    return folders
