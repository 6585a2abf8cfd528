"""Every URL pattern of the project, includes followed: what the permission matrix
(test_authz_matrix.py) and the page sweep of the browser tests (browser_pages.py) enumerate."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern


@dataclass(frozen=True)
class Pattern:
    key: str  # "namespace:name", or "/route" for an unnamed pattern
    route: str
    parameters: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return self.key.rpartition(":")[0]


def _parameters(pattern) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return list(pattern.converters)
    return list(pattern.regex.groupindex)


@cache
def all_patterns() -> tuple[Pattern, ...]:
    """Every URL pattern of the project, includes followed."""
    found: list[Pattern] = []

    def walk(patterns, prefix: str, namespace: str, parameters: tuple[str, ...]) -> None:
        for item in patterns:
            route = prefix + str(item.pattern)
            names = parameters + tuple(_parameters(item.pattern))
            if isinstance(item, URLResolver):
                inner = ":".join(filter(None, [namespace, item.namespace]))
                walk(item.url_patterns, route, inner, names)
            elif isinstance(item, URLPattern):
                if item.name:
                    key = f"{namespace}:{item.name}" if namespace else item.name
                else:
                    key = "/" + route
                found.append(Pattern(key, route, names))

    walk(get_resolver().url_patterns, "", "", ())
    return tuple(found)
