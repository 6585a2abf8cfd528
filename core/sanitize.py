"""Values from the outside (probes, scrapes, discovery) made safe to store in any database:
no NUL (PostgreSQL refuses it), no lone surrogate (UTF-8 cannot carry it), no NaN or
infinity (JSON has none), bounded sizes. One odd value then costs nothing but itself."""

from __future__ import annotations

import math
from typing import Any


def clean_text(value: Any, limit: int = 2000) -> str:
    text = str(value)[: limit * 2]
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text[:limit]


def clean_metadata(values: Any) -> dict[str, Any]:
    """Probe metadata reduced to what JSON columns store everywhere: finite scalars, short text."""
    if not isinstance(values, dict):
        return {}
    cleaned: dict[str, Any] = {}
    for key, value in list(values.items())[:50]:
        name = clean_text(key, 100)
        if isinstance(value, bool) or value is None:
            cleaned[name] = value
        elif isinstance(value, int):
            if -(2**63) <= value < 2**63:
                cleaned[name] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                cleaned[name] = value
        else:
            cleaned[name] = clean_text(value, 500)
    return cleaned


def json_problem(value: Any, max_depth: int = 16) -> str | None:
    """Why a user's JSON value cannot be stored everywhere (too deep, a NUL or a lone
    surrogate, a non-finite number), or None. Iterative: no depth reaches a RecursionError."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"it is nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            for key, inner in item.items():
                stack.append((key, depth))
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "it contains a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "it contains a character that is not valid Unicode"
        elif isinstance(item, float) and not math.isfinite(item):
            return "it contains NaN or infinity"
    return None
