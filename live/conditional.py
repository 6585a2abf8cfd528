"""``@refreshable``: a polled fragment answers 304 when nothing it shows has changed.

Only htmx requests (the polls and the in-page navigation) are conditional: a whole page is
rendered each time, since it may carry one-time messages; it carries the ETag its fragment
has now in ``data-etag`` (``request.live_etag``). The client (static/js/live.js) sends
back the ETag of the fragment it shows in ``If-None-Match``; because the request carries that
header itself, the browser hands the 304 to the page instead of answering from its cache, and
htmx leaves the fragment as it is.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.crypto import salted_hmac

from core.project import own_app_folders

from .stamp import current

# In development (DEBUG on, no LIVE_RELEASE), what a fragment's markup is made of: an edit of
# one of them changes every ETag. Besides these, the Python of the project's own apps (views
# shape the texts pages show) and requirements.txt (an upgrade may change markup too).
RELEASE_SOURCES = ("templates", "static/js", "static/css", "requirements.txt")


def release_problem() -> str:
    """Why ETags cannot be made here, or "" (a system check and the web workers' warm-up)."""
    if settings.LIVE_RELEASE or settings.DEBUG:
        return ""
    return (
        "LIVE_RELEASE must name the deployed release when DEBUG is off (the commit, say): "
        "every ETag carries it, so a deploy is never answered with a page of the release before."
    )


@functools.cache
def release() -> str:
    """``LIVE_RELEASE`` (a deploy names it); in development only, a digest of the templates,
    scripts, styles and Python this process serves, so that an edit changes every ETag."""
    if settings.LIVE_RELEASE:
        return settings.LIVE_RELEASE
    if release_problem():
        raise ImproperlyConfigured(release_problem())
    digest = hashlib.sha256()
    for name, path in release_files():
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def release_files() -> list[tuple[str, Path]]:
    """The files ``release()`` digests, each with the name it is digested under."""
    base = Path(settings.BASE_DIR).resolve()
    found: list[tuple[str, Path]] = []
    for source in RELEASE_SOURCES:
        paths = [base / source] if (base / source).is_file() else sorted((base / source).rglob("*"))
        for path in paths:
            if path.is_file():
                found.append((str(path.relative_to(base)), path))
    for config in apps.get_app_configs():
        folder = Path(config.path) / "templates"  # every app's templates
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            if path.is_file():
                found.append(("", path))
    for root in own_app_folders():  # and the project's own apps' Python
        for path in sorted(root.rglob("*.py")):
            found.append((str(path.relative_to(base)), path))
    return found


def fragment_digest(request: HttpRequest, also: str = "") -> str:
    """What the fragment at this URL shows for this user, as 32 hex digits: an HMAC keyed by
    SECRET_KEY (it tells nothing of the counts behind it) of the release, the user's stamp, their
    rights and the URL (and ``also``: what else the fragment shows that no stamp follows)."""
    user = request.user
    rights = f"{user.pk}:{int(user.is_staff)}:{int(user.is_superuser)}:{int(user.is_active)}"
    parts = (release(), current(user), rights, request.get_full_path(), also)
    return salted_hmac("live.etag", "|".join(parts)).hexdigest()[:32]


def fragment_etag(request: HttpRequest, digest: str | None = None) -> str:
    """The digest and the time this ETag heals at: a write no signal saw shows by then. Each
    rendered answer draws its own time between half and all of ``LIVE_STAMP_HEAL_SECONDS``
    from now, so open tabs, even a thousand of one user's, render again one by one, never all
    at the same second."""
    heal = settings.LIVE_STAMP_HEAL_SECONDS
    until = int(time.time() + heal * random.uniform(0.5, 1.0))
    return f'"{digest or fragment_digest(request)}.{until}"'


def _still_true(asked: set[str], digest: str) -> str | None:
    """The ETag the client sent, when its digest is the current one and it has not healed."""
    now = time.time()
    for tag in asked:
        value, _, until = tag.strip('"').partition(".")
        fresh = until.isascii() and until.isdigit() and len(until) <= 12 and int(until) > now
        if value == digest and fresh:
            return tag
    return None


def _conditional(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(
        request.method == "GET"
        and htmx
        and not htmx.history_restore_request
        and request.user.is_authenticated
    )


def refreshable(view=None, *, also=None):
    """Wrap a view whose htmx answer is a fragment that depends only on the data, the user and
    the URL; ``also(request)`` adds a short text of anything else it shows (the overview: whether
    probing has stalled), so that a change of it is a change of the fragment."""
    if view is None:
        return functools.partial(refreshable, also=also)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        extra = also(request) if also is not None and request.user.is_authenticated else ""
        if not _conditional(request):
            if request.method == "GET" and request.user.is_authenticated:
                # the whole page hands its fragment's ETag to the page (data-etag): the first
                # poll after a page load is answered 304 too
                request.live_etag = fragment_etag(request, fragment_digest(request, extra))
            return view(request, *args, **kwargs)
        digest = fragment_digest(request, extra)
        kept = _still_true(_asked(request), digest)
        if kept:
            response = HttpResponseNotModified()
            response["ETag"] = kept
            response["Cache-Control"] = "no-store"
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            response["X-Release"] = release()  # live.js reloads a page of another release
            response["ETag"] = fragment_etag(request, digest)
            response["Cache-Control"] = "no-store"  # the page's own header asks, not the cache
        return response

    return wrapper


def _asked(request: HttpRequest) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}
