"""A session cookie no session key could be is dropped before Django's SessionMiddleware
reads it: the request is then one without a session (signed out), never a 500.

Django makes keys of 32 lowercase letters and digits; its stores accept any text of eight or more
characters, and PostgreSQL refuses a NUL in text. Everything else about sessions is Django's
(``SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"``)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def could_be_a_key(value: str) -> bool:
    return 8 <= len(value) <= 40 and value.isascii() and value.isalnum()


class SessionCookieCheck:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = settings.SESSION_COOKIE_NAME
        value = request.COOKIES.get(name)
        if value is not None and not could_be_a_key(value):
            del request.COOKIES[name]
        return self.get_response(request)
