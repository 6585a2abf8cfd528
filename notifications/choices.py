"""What an event is, for notifications, and what a channel hears by default."""

from django.db import models


class Category(models.TextChoices):
    DISCONNECTED = "disconnected", "Went down (→ Disconnected)"
    NOT_FOUND = "not_found", "Not found (→ Not Found)"
    AUTH = "auth", "Authentication failure"
    RECOVERY = "recovery", "Recovered (→ Connected/Registered)"
    ADMINISTRATIVE = "administrative", "Administrative changes (by a user)"
    LIFECYCLE = "lifecycle", "Other automatic changes (discovered, registered, vanished)"
    PARTIAL = "partial", "Partial outages (down in some locations, not a quorum)"


# The changes that mean something is wrong, and the one that means it is over.
FAILURES = (Category.DISCONNECTED, Category.NOT_FOUND, Category.AUTH)
# partial outages are heard once chosen: one location's blip is an event for each connection
# it probes
DEFAULT_CATEGORIES = [*FAILURES, Category.RECOVERY]


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook"
    EMAIL = "email", "Email"
    APPRISE = "apprise", "Slack, Teams, Discord, ntfy, … (Apprise URL)"


class MessageKind(models.TextChoices):
    FAILURE = "failure", "Failure"
    RECOVERY = "recovery", "Recovery"
    OTHER = "other", "State change"
    GROUP = "group", "Grouped"
    REMINDER = "reminder", "Reminder"
    TEST = "test", "Test"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # waiting for its group window, a token, or its retry time
    SENDING = "sending", "Sending"  # claimed by a worker until lease_until
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # out of attempts
    GROUPED = "grouped", "Grouped"  # sent inside the group message ``group``
    CANCELLED = "cancelled", "Cancelled"  # its channel was disabled before it was sent
