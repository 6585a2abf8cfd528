"""What follows a change of state, beside the change itself: one visible list.

A transition (``lifecycle.transition``, and a new connection's first row) writes its history
row and then calls ``transitioned(record)``, which runs every hook an app registered in its
``apps.py``:

- ``on_transition(hook)``: inside the transition's transaction, so what the hook writes exists
  exactly when the transition does (the notifications' outbox event);
- ``after_commit(hook)``: once the transaction has committed (nothing runs for a rollback).

A partial outage (probed from several locations: down in some, not a quorum; no transition)
beginning or ending calls ``partial(connection, began, note)`` for every hook registered with
``on_partial(hook)``, inside the transaction that records the round's outcome.

Hooks run in the order they were registered; a hook that raises inside the transaction undoes
the transition with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

Hook = Callable[[Any], None]

_in_transaction: list[Hook] = []
_after_commit: list[Hook] = []
_on_partial: list[Callable[[Any, bool, str], None]] = []


def on_transition(hook: Hook) -> None:
    if hook not in _in_transaction:
        _in_transaction.append(hook)


def on_partial(hook: Callable[[Any, bool, str], None]) -> None:
    if hook not in _on_partial:
        _on_partial.append(hook)


def partial(connection: Any, began: bool, note: str) -> None:
    """A partial outage of ``connection`` began (``note`` says where) or ended."""
    for hook in _on_partial:
        hook(connection, began, note)


def after_commit(hook: Hook) -> None:
    if hook not in _after_commit:
        _after_commit.append(hook)


@contextmanager
def paused(hook: Hook) -> Iterator[None]:
    """Without ``hook`` for a while (a bench's baseline: the same work without the outbox)."""
    lists = [hooks for hooks in (_in_transaction, _after_commit, _on_partial) if hook in hooks]
    for hooks in lists:
        hooks.remove(hook)
    try:
        yield
    finally:
        for hooks in lists:
            hooks.append(hook)


def registered() -> dict[str, list[str]]:
    """The hooks, by name (for the docs and the tests)."""
    return {
        "on_transition": [f"{h.__module__}.{h.__qualname__}" for h in _in_transaction],
        "after_commit": [f"{h.__module__}.{h.__qualname__}" for h in _after_commit],
    }


def transitioned(record: Any) -> None:
    """Run the hooks for a history row just written."""
    for hook in _in_transaction:
        hook(record)
    for hook in _after_commit:
        transaction.on_commit(lambda hook=hook: hook(record))
