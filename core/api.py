"""One JSON shape for every API error: {"error": {"status", "code", "message", "fields"?, …}}.

A domain exception says how it is answered itself (``api_status``, ``api_code`` and
``api_extra()``): this module knows no app."""

import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from core.ids import MAX_ID
from core.sanitize import clean_text


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


class BoundedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key, checked to be an integer from 1 to 2**63-1 before it is looked up: DRF's
    field hands any number to the query (OverflowError on SQLite beyond 64 bits, and on every
    database for ``1e999``, which JSON reads as infinity)."""

    default_error_messages = {
        "out_of_range": f"Expected an id from 1 to {MAX_ID}, got {{pk_value}}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip().isascii() and data.strip().isdigit():
            digits = data.strip().lstrip("0") or "0"
            if len(digits) > len(str(MAX_ID)):
                self.fail("out_of_range", pk_value=f"{digits[:20]}… ({len(digits)} digits)")
            data = int(digits)
        elif isinstance(data, float) and math.isfinite(data) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            shown = data if data.bit_length() <= 128 else f"a number of {data.bit_length()} bits"
            self.fail("out_of_range", pk_value=shown)
        return super().to_internal_value(data)


def bounded_ids(**kwargs) -> serializers.ListField:
    """A list of ids: each an integer from 1 to 2**63-1."""
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), **kwargs
    )


class UsernameField(serializers.SlugRelatedField):
    """A user by name; a name no database could hold is "not found", never a query."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or clean_text(data, 150) != data:
            self.fail("does_not_exist", slug_name=self.slug_field, value="(unreadable)")
        return super().to_internal_value(data)


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        summary = getattr(self, "summary", None)
        if summary is not None:
            response.data["summary"] = summary
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["summary"] = {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "rows per state under the other filters (where a list counts them)",
        }
        return schema


def invalid(exc, move_to: dict[str, str] | None = None) -> serializers.ValidationError:
    """A Django ValidationError as the API's 400, each field under its name (or, for a name in
    ``move_to``, under that field, prefixed with its own name)."""
    if not hasattr(exc, "error_dict"):
        return serializers.ValidationError({"non_field_errors": exc.messages})
    fields: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        if move_to and name in move_to:
            fields.setdefault(move_to[name], []).extend(f"{name}: {m}" for m in messages)
        else:
            fields[name] = messages
    return serializers.ValidationError(fields)


MAX_LIST = 500  # ids (or kinds) in one list of a body


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's field turns a number into its digits, so
    ``"destination": 123`` would be checked as the text "123" instead of being refused."""

    default_error_messages = {"not_a_string": "Expected a string, got {type}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string", type=_json_type(data))
        return super().to_internal_value(data)


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class VisibleId(BoundedPrimaryKeyRelatedField):
    """An id among what the caller may see (``visible(user)``): anything else, hidden or
    absent, is "does not exist", so existence is never revealed."""

    def __init__(self, model, visible, **kwargs):
        self.visible = visible
        super().__init__(queryset=model._default_manager.none(), **kwargs)

    def get_queryset(self):
        user = request_user(self.root)
        return self.visible(user) if user is not None else super().get_queryset()


class IdList(serializers.ManyRelatedField):
    """Ids of visible objects, at most ``MAX_LIST`` (counted before any is looked up)."""

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) > MAX_LIST:
            raise serializers.ValidationError(f"Give at most {MAX_LIST} ids.")
        return super().to_internal_value(data)


def ids_of(model, visible, **kwargs) -> IdList:
    return IdList(child_relation=VisibleId(model, visible), **kwargs)


def _flatten(detail, prefix: str = "") -> list[str]:
    """Nested errors (a list's items, the rule inside a channel) as sentences naming their
    place: the API's one error shape wants a list of messages per field."""
    if isinstance(detail, dict):
        return [
            message
            for key, value in detail.items()
            for message in _flatten(
                value,
                f"{prefix}item {int(key) + 1}: " if str(key).isdigit() else f"{prefix}{key}: ",
            )
        ]
    if isinstance(detail, list):
        return [message for item in detail for message in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


class FlatErrors:
    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                raise serializers.ValidationError(
                    {field: _flatten(errors) for field, errors in exc.detail.items()}
                ) from None
            raise


def request_user(serializer: serializers.Serializer):
    request = serializer.context.get("request")  # absent while the schema is generated
    return getattr(request, "user", None)
