"""The SQL kept per process and user's rights (core/keptsql.py): the bell on every page and
the live stamp behind every poll. What it must never do is serve one user's rights to another
or keep rights that changed since."""

import threading

import pytest

from connections.choices import Status
from core import keptsql
from environments.models import Environment, EnvironmentMembership
from live import stamp
from notifications import center
from notifications.models import Watch
from tests.notifying import down

pytestmark = pytest.mark.django_db


def test_a_membership_given_or_taken_after_the_sql_was_kept_counts_at_once(
    owner, stranger, make_connection
):
    theirs = make_connection(Status.CONNECTED, owner=stranger)
    Watch.objects.create(user=owner, connection=theirs)
    down(theirs)
    assert center.unread_count(owner) == 0  # watched, but not shared with them
    env = Environment.objects.create(name="shared", owner=stranger)
    env.connections.add(theirs)
    membership = EnvironmentMembership.objects.create(environment=env, user=owner)
    assert center.unread_count(owner) == 1
    membership.delete()
    assert center.unread_count(owner) == 0


@pytest.mark.parametrize("name", ["live-stamp", "bell-unread-100"])
def test_the_kept_sql_of_two_users_differs_only_where_it_names_the_user(django_user_model, name):
    """Nothing of a user but their id is in the SQL: no membership or right computed in Python
    and written into it as a list, which the store would keep after it changed."""
    build = stamp._stamp_query if name == "live-stamp" else center._unread_query(100)
    first = keptsql.kept_sql(name, django_user_model(pk=4101, is_active=True), build)
    second = keptsql.kept_sql(name, django_user_model(pk=4102, is_active=True), build)
    assert first[0] == second[0]
    assert len(first[1]) == len(second[1])
    for a, b in zip(first[1], second[1], strict=True):
        if a != b:
            assert {str(a), str(b)} in (
                {"4101", "4102"},
                {"o:4101", "o:4102"},
                {"u:4101", "u:4102"},
            )


def test_threads_building_at_once_keep_each_users_parameters(django_user_model, monkeypatch):
    monkeypatch.setattr(keptsql, "KEPT", 50)  # and the oldest make room for the newest
    users = [django_user_model(pk=i, is_active=True) for i in range(1, 300)]
    wrong = []

    def work(chunk):
        for user in chunk * 3:
            _, params = keptsql.kept_sql("live-stamp", user, stamp._stamp_query)
            if f"o:{user.pk}" not in params:
                wrong.append(user.pk)

    threads = [threading.Thread(target=work, args=(users[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(keptsql._kept) <= 50
