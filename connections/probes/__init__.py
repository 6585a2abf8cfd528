"""Health probes: one module per connection kind behind a small registry.

A probe *returns* a ``ProbeOutcome``; it never touches the database. ``connections.lifecycle``
applies outcomes. Kinds without a probe of their own use the generic HTTP probe.
"""

from .base import ProbeOutcome, check_reachability, get_probe, register_probe

__all__ = ("ProbeOutcome", "check_reachability", "get_probe", "register_probe")
