"""The Jinja2 environment of the hot fragments (the table's rows and state menus: a page draws
fifty rows, each with a menu and thirty ticks). Django's own template language draws every
other page. Autoescaping is on; Django's safe strings (``icon``) stay safe."""

from __future__ import annotations

from typing import Any

from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from jinja2 import Environment, StrictUndefined

from core.figures import latency_text, percent_text, uptime_level
from core.templatetags.ui import ago_seconds, ago_text, icon_markup


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def localtime(moment):
    """A datetime as the page shows it (the current zone), naive ones as they are."""
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def environment(**options: Any) -> Environment:
    # a name the template does not get is an error, never an empty string in the markup
    # (Django's backend passes its own ``undefined``, DebugUndefined or Undefined: replaced)
    options["undefined"] = StrictUndefined
    env = Environment(**options)
    env.globals.update(url=url, icon=icon_markup, localtime=localtime, ago_text=ago_text)
    env.globals.update(percent=percent_text, uptime_level=uptime_level, latency=latency_text)
    env.filters.update(floatformat=floatformat, ago_seconds=ago_seconds)
    return env
