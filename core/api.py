"""One JSON shape for every API error: {"error": {"status", "code", "message", "fields"?, …}}.

A domain exception says how it is answered itself (``api_status``, ``api_code`` and
``api_extra()``): this module knows no app."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler


def error(http_status: int, code: str, message: str, **extra) -> Response:
    return Response(
        {"error": {"status": http_status, "code": code, "message": message, **extra}},
        status=http_status,
    )


def exception_handler(exc, context):
    if hasattr(exc, "api_status") and hasattr(exc, "api_code"):
        extra = exc.api_extra() if hasattr(exc, "api_extra") else {}
        return error(exc.api_status, exc.api_code, str(exc), **extra)
    if isinstance(exc, Http404):
        return error(404, "not_found", "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        first = next(iter(fields.values()), ["Invalid input."])
        message = first[0] if isinstance(first, list) and first else str(first)
        return error(status.HTTP_400_BAD_REQUEST, "invalid", str(message), fields=fields)
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    code = getattr(detail, "code", None) or "error"
    response.data = {
        "error": {
            "status": response.status_code,
            "code": str(code),
            "message": str(detail),
            **getattr(exc, "extra", {}),
        }
    }
    return response
