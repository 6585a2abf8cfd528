"""Scheduled maintenance windows: when connections enter and leave maintenance by schedule,
and which notifications a window keeps quiet."""
