"""Operability: liveness and readiness checks, the Prometheus metrics, and the ``health``
command that process managers run."""
