"""The client's address for sign-in throttling: behind a proxy, the address the proxy saw.

``TRUSTED_PROXIES`` lists the proxies' addresses; when a request comes from one of them, the
rightmost address of ``X-Forwarded-For`` that is not a trusted proxy is the client. Without
trusted proxies the header is ignored (anyone could write it) and REMOTE_ADDR counts.
"""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = set(settings.TRUSTED_PROXIES)
    if remote not in trusted:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for address in reversed(forwarded):
        if address and address not in trusted:
            return address[:45]
    return remote
