"""Errors a person meets get the product's pages, also in the default run (DEBUG on): never
Django's debug 404 (every URL pattern listed) or its debug 500 (a traceback and the view's
locals)."""

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.error_urls")]


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def test_a_url_nothing_matches_is_the_products_not_found_page(debug, client):
    response = client.get("/no/such/page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "Not found" in body and "Back to the overview" in body
    assert "URLconf" not in body
    assert "Django tried these URL patterns" not in body


def test_a_view_that_raises_not_found_is_the_same_page(debug, client):
    response = client.get("/gone/")
    body = response.content.decode()
    assert response.status_code == 404 and "Not found" in body
    assert "GONE-DETAIL" not in body and "Raised by" not in body


def test_a_view_that_breaks_is_a_plain_500_without_its_locals(debug, caplog):
    client = Client(raise_request_exception=False)
    response = client.get("/broken/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert "BROKEN-VIEW-SECRET-42" not in body and "Traceback" not in body
    assert "RuntimeError: the view broke" in caplog.text  # the log says why


def test_a_forbidden_action_is_the_products_not_allowed_page(debug, owner):
    client = Client()
    client.force_login(owner)
    response = client.get("/forbidden/")
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()


def test_developers_can_have_djangos_debug_pages_back(settings, client):
    settings.DEBUG, settings.FRIENDLY_ERRORS = True, False
    assert "Django tried these URL patterns" in client.get("/no/such/page/").content.decode()


def test_the_api_answers_json_not_a_page(debug, client):
    response = client.get("/api/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"status": 404, "code": "not_found", "message": "Not found."}
    }
