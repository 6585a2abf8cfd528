"""Health probes: one module per connection kind behind a small registry.

A probe *returns* a ``ProbeOutcome``; it never touches the database. ``connections.health``
applies outcomes to connections. A kind without a probe of its own uses the generic HTTP probe.
Importing the kind modules below registers their probes.
"""

from . import grafana, http, kubernetes, prometheus, remote_provider  # noqa: F401
from .base import HttpProbe, Probe, ProbeFailed, ProbeOutcome
from .registry import check_reachability, get_probe, probe_many, register_probe

__all__ = (
    "HttpProbe",
    "Probe",
    "ProbeFailed",
    "ProbeOutcome",
    "check_reachability",
    "get_probe",
    "probe_many",
    "register_probe",
)
