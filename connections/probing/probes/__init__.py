"""Health probes: one module per connection kind behind a small registry.

A probe *returns* a ``ProbeOutcome``; it never touches the database.
``connections.probing.outcomes`` applies outcomes to connections. A kind without a probe of its
own uses the generic HTTP probe.
Importing the kind modules below registers their probes.
"""

from connections.probing.probes import grafana, http, kubernetes, prometheus, remote_provider  # noqa: F401
from connections.probing.probes.base import HttpProbe, Probe, ProbeFailed, ProbeOutcome
from connections.probing.probes.registry import (
    check_reachability,
    get_probe,
    probe_many,
    register_probe,
)

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
