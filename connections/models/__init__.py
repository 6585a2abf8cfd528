"""The connections app's models, one module per job."""

from .collected import (
    LATENCY_BUCKETS_MS,
    DiscoveredResource,
    MetricSample,
    ProbeCounter,
    ProbeResult,
    ProbeRollup,
)
from .connection import (
    ALL_BUT_DELETED,
    Connection,
    ConnectionQuerySet,
    ConnectionTransition,
    LiveConnectionManager,
    can_administer,
    entered,
    is_managed,
    is_self_connecting,
    is_unmanaged,
    resume_target,
)
from .dependency import Dependency
from .location import Location, LocationWorker, ProbeRound, Quorum, queue_of, stale_before
from .preference import TableColumns
from .tag import Tag

__all__ = (
    "ALL_BUT_DELETED",
    "LATENCY_BUCKETS_MS",
    "Connection",
    "ConnectionQuerySet",
    "ConnectionTransition",
    "Dependency",
    "DiscoveredResource",
    "LiveConnectionManager",
    "Location",
    "LocationWorker",
    "MetricSample",
    "ProbeCounter",
    "ProbeResult",
    "ProbeRound",
    "ProbeRollup",
    "Quorum",
    "TableColumns",
    "Tag",
    "can_administer",
    "entered",
    "is_managed",
    "is_self_connecting",
    "is_unmanaged",
    "queue_of",
    "resume_target",
    "stale_before",
)
