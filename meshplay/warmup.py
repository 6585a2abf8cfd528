"""What a web worker does once, before its first request, so that no user pays for it.

Measured with a real gunicorn (bench/refresh.py): a fresh worker's first overview took 310 ms
and its first connection page 260 ms, against about 100 and 50 ms afterwards. The difference is
one-time work: importing the views behind the URLs and indexing their names, compiling
templates (the cached loader keeps each one for the life of the process, but compiles it at its
first use), reading the static files' manifest, hashing the release for the live ETags.
Twenty users arriving at three fresh workers met a dozen of those first times, which was most of
their slowest 5 %.

``warm_up()`` runs from ``meshplay/wsgi.py``, in each worker as it loads the application (so it
works for gunicorn, uWSGI or any other WSGI server). It opens no database connection: with
``--preload`` (or uWSGI without ``lazy-apps``) the application is loaded in the master, and a
connection opened there would be shared by every forked worker (each reading the others'
answers); a database that does not answer would also keep workers from starting and /healthz
from answering. The first request connects, as before (a few ms). With DEBUG on, templates are
not cached, so there is nothing to compile. Any failure is logged and the worker serves
anyway: the page that needs a broken template fails, not the server.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.conf import settings

from core.project import own_app_folders

logger = logging.getLogger(__name__)


def template_names() -> list[str]:
    """Every template of the project and its own apps (not Django's or third parties': the admin's
    hundreds would slow every worker's start for pages few users open)."""
    folders = [Path(folder) for option in settings.TEMPLATES for folder in option.get("DIRS", ())]
    folders += [app / "templates" for app in own_app_folders() if (app / "templates").is_dir()]
    names = set()
    for folder in folders:
        # a folder of another engine inside this one (templates/jinja2) is that engine's
        inner = [other for other in folders if other != folder and other.is_relative_to(folder)]
        names.update(
            str(path.relative_to(folder))
            for path in folder.rglob("*.html")
            if path.is_file() and not any(path.is_relative_to(other) for other in inner)
        )
    return sorted(names)


def warm_up() -> dict[str, object]:
    """Do the one-time work now; returns what was done (for the log and the tests)."""
    from django.template.loader import get_template
    from django.templatetags.static import static
    from django.urls import get_resolver, reverse

    started = time.monotonic()
    done: dict[str, object] = {"templates": 0, "failed": []}
    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    reverse("overview")  # builds the table of names every {% url %} looks up
    if not settings.DEBUG:
        for name in template_names():
            try:
                get_template(name)
                done["templates"] += 1
            except Exception as error:  # noqa: BLE001 (a broken template fails its page, not the boot)
                done["failed"].append(name)
                logger.error("template %s does not compile: %s", name, error)
    from live.conditional import release

    for name, step in (
        ("static files", lambda: static("vendor/lucide/sprite.svg")),  # the manifest's names
        ("release digest", release),
    ):
        try:
            step()
        except Exception as error:  # noqa: BLE001 (each fails again, and is seen, where used)
            logger.warning("%s: %s", name, error)
    done["seconds"] = round(time.monotonic() - started, 3)
    logger.info("warmed up: %s", done)
    return done
