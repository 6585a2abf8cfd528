"""The release a page was served by, for live.js: a refresh answered by another release (a
deploy happened) reloads the page instead of swapping new markup under the old scripts."""

from django.http import HttpRequest

from .conditional import release


def live_release(request: HttpRequest) -> dict[str, str]:
    return {"live_release": release()}
