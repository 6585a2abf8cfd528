"""Property-based calls to every operation of the schema (schemathesis): no 5xx, and every
answer conforms to the schema it documents. Examples are bounded; the data is generated."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from accounts.models import ApiToken
from meshplay.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """Called as a WSGI app, Django would close the DB connection at each request's end (its
    test client prevents that the same way): the test's transaction must survive."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def key(django_user_model, make_connection):
    user = django_user_model.objects.create_user("fuzz", password="pw-fuzz-2026")
    # something to find: connections in a few states, owned by the caller
    for state in ("connected", "registered", "maintenance"):
        make_connection(state, owner=user, name=f"fuzz-{state}")
    return ApiToken.issue(user, "schemathesis")[1]


@pytest.mark.postgres
@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_schema(case, key):
    case.call_and_validate(headers={"Authorization": f"Token {key}"}, checks=CHECKS)
