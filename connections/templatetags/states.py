"""A state's icon, for any template that draws one (``connections.choices.STATE_ICONS``)."""

from django import template

from connections.choices import STATE_ICONS, UNKNOWN_STATE_ICON

register = template.Library()


@register.filter
def state_icon(status: str) -> str:
    return STATE_ICONS.get(status, UNKNOWN_STATE_ICON)
