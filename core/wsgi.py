"""What a request must be before Django reads it: a WSGI middleware for what Django itself
answers with a 500 before any of its middleware runs."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable
from email.message import Message
from typing import Any

BAD_CHARSET = json.dumps(
    {
        "error": {
            "status": 400,
            "code": "bad_charset",
            "message": "The Content-Type names a charset that is no text encoding.",
        }
    }
).encode()


def readable_charset(content_type: str) -> bool:
    """Whether the charset a Content-Type names (if any) is a text encoding. Django decodes the
    query string with it as it builds the request: ``charset=rot13`` (a codec, not a text
    encoding) raised LookupError there, a 500 whatever the view."""
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    if not charset or not isinstance(charset, str):
        return True
    try:
        return codecs.lookup(charset)._is_text_encoding
    except LookupError:
        return True  # Django ignores a charset it does not know


def refuse_unreadable_charsets(application: Callable) -> Callable:
    def guarded(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not readable_charset(environ.get("CONTENT_TYPE", "")):
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/json"), ("Content-Length", str(len(BAD_CHARSET)))],
            )
            return [BAD_CHARSET]
        return application(environ, start_response)

    return guarded
