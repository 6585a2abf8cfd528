"""``reverse()`` for the links a page draws by the hundred: each pattern is reversed once per
process and script prefix, then filled in with string formatting. An overview page links some
300 times and a table page 150; ``reverse()`` costs tens of microseconds each."""

from __future__ import annotations

import functools

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, reverse


def pk_url(name: str, pk: int) -> str:
    """``reverse(name, args=[pk])`` for a URL whose only argument is a primary key."""
    return _pk_pattern(name, get_script_prefix()).format(int(pk))


def named_url(name: str) -> str:
    """``reverse(name)`` for a URL without arguments."""
    return _named(name, get_script_prefix())


@functools.lru_cache(maxsize=64)
def _pk_pattern(name: str, prefix: str) -> str:
    marker = 987654321987
    return (
        reverse(name, args=[marker])
        .replace("{", "{{")
        .replace("}", "}}")
        .replace(str(marker), "{0}")
    )


@functools.lru_cache(maxsize=64)
def _named(name: str, prefix: str) -> str:
    return reverse(name)


@receiver(setting_changed)
def _urls_changed(setting: str, **kwargs) -> None:
    if setting == "ROOT_URLCONF":
        _pk_pattern.cache_clear()
        _named.cache_clear()
