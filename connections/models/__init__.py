"""The connections app's models, one module per job."""

from .collected import DiscoveredResource, MetricSample, ProbeResult, ProbeRollup
from .connection import (
    ALL_BUT_DELETED,
    Connection,
    ConnectionQuerySet,
    ConnectionTransition,
    LiveConnectionManager,
    can_administer,
    is_managed,
    is_self_connecting,
    is_unmanaged,
    resume_target,
)
from .credentials import Credential, CredentialQuerySet
from .tokens import ApiToken

__all__ = (
    "ALL_BUT_DELETED",
    "ApiToken",
    "Connection",
    "ConnectionQuerySet",
    "ConnectionTransition",
    "Credential",
    "CredentialQuerySet",
    "DiscoveredResource",
    "LiveConnectionManager",
    "MetricSample",
    "ProbeResult",
    "ProbeRollup",
    "can_administer",
    "is_managed",
    "is_self_connecting",
    "is_unmanaged",
    "resume_target",
)
