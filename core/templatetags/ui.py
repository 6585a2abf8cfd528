"""The dashboard's small pieces shared by every page: ``{% icon %}`` and ``|ago``."""

from __future__ import annotations

import functools
from datetime import datetime

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def icon(name: str, label: str = "", size: int = 16) -> str:
    """An icon of the vendored sprite (static/vendor/lucide/sprite.svg). Without ``label`` it
    is decoration, hidden from assistive technology; with one it is announced as that text."""
    return icon_markup(str(name), str(label), int(size))


@functools.lru_cache(maxsize=1024)
def icon_markup(name: str, label: str, size: int) -> str:
    """One icon's markup, kept: a table page draws hundreds of them, and ``static()`` looks the
    sprite's hashed name up each time (the same for the life of the process)."""
    href = f"{static('vendor/lucide/sprite.svg')}#{name}"
    if label:
        return format_html(
            '<svg class="icon" width="{}" height="{}" role="img" aria-label="{}">'
            '<title>{}</title><use href="{}"></use></svg>',
            size,
            size,
            label,
            label,
            href,
        )
    return format_html(
        '<svg class="icon" width="{}" height="{}" aria-hidden="true" focusable="false">'
        '<use href="{}"></use></svg>',
        size,
        size,
        href,
    )


@receiver(setting_changed)
def _static_changed(setting: str, **kwargs) -> None:
    if setting in {"STATIC_URL", "STATIC_ROOT", "STORAGES"}:
        icon_markup.cache_clear()


def ago_text(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest unit that says it ("just now", "5 s ago", "3 min ago",
    "2 h ago", "4 d ago"); a moment in the future (a skewed clock) reads "just now"."""
    if moment is None:
        return "never"
    return ago_seconds(int(((now or timezone.now()) - moment).total_seconds()))


def ago_seconds(seconds: int) -> str:
    """``ago_text`` of a moment ``seconds`` ago."""
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


@register.filter
def ago(moment: datetime | None) -> str:
    return ago_text(moment)


@register.simple_tag
def ago_time(moment: datetime | None) -> str:
    """``|ago`` in a ``<time>`` element that static/js/live.js keeps true between refreshes;
    the absolute time is its tooltip."""
    if moment is None:
        return "never"
    local = timezone.localtime(moment)
    return format_html(
        '<time datetime="{}" data-ago title="{}">{}</time>',
        moment.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        ago_text(moment),
    )
