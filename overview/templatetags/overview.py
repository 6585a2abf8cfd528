"""The overview's one template helper: the icon of a state."""

from django import template

from overview.summary import STATE_ICONS

register = template.Library()


@register.filter
def state_icon(status: str) -> str:
    return STATE_ICONS.get(status, "circle-help")
