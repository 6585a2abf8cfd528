"""The states, triggers and their presentation, defined once (NetBox's ``choices.py`` habit).

The state badge in the admin, the table and the detail page all read ``STATUS_STYLE``; each state
differs by its icon and text as well as its colour, so the badge is readable without colour.
"""

from django.db import models


class Status(models.TextChoices):
    DISCOVERED = "discovered", "Discovered"
    REGISTERED = "registered", "Registered"
    CONNECTED = "connected", "Connected"
    IGNORED = "ignored", "Ignored"
    MAINTENANCE = "maintenance", "Maintenance"
    DISCONNECTED = "disconnected", "Disconnected"
    DELETED = "deleted", "Deleted"
    NOT_FOUND = "not_found", "Not Found"


class Trigger(models.TextChoices):
    USER = "user", "User"
    PROBE = "probe", "Probe"
    DISCOVERY = "discovery", "Discovery"
    SCHEDULE = "schedule", "Schedule"
    SYSTEM = "system", "System"


# States the background health check probes (the "probed" column of the lifecycle spec).
PROBED_STATES = (
    Status.DISCOVERED,
    Status.REGISTERED,
    Status.CONNECTED,
    Status.DISCONNECTED,
)


class MaintenanceSource(models.TextChoices):
    """Who put a connection in maintenance: a schedule never ends what a user started."""

    USER = "user", "User"
    SCHEDULE = "schedule", "Schedule"


# colour name, hex colour, icon glyph: one entry per state.
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    Status.DISCOVERED: ("blue", "#1d6fb8", "◌"),
    Status.REGISTERED: ("teal", "#0f7b74", "◆"),
    Status.CONNECTED: ("green", "#1e7d32", "●"),
    Status.IGNORED: ("grey", "#5f6368", "⊘"),
    Status.MAINTENANCE: ("amber", "#8a5a00", "⚒"),
    Status.DISCONNECTED: ("red", "#b3261e", "✕"),
    Status.DELETED: ("black", "#202124", "⌫"),
    Status.NOT_FOUND: ("purple", "#6a3d9a", "?"),
}


# The icon (of the vendored Lucide sprite) each state is drawn with beside its name, wherever an
# icon stands for a state (the overview, the environments' state counts).
STATE_ICONS: dict[str, str] = {
    Status.DISCOVERED: "layers",
    Status.REGISTERED: "check",
    Status.CONNECTED: "circle-check",
    Status.IGNORED: "circle-pause",
    Status.MAINTENANCE: "wrench",
    Status.DISCONNECTED: "circle-x",
    Status.DELETED: "x",
    Status.NOT_FOUND: "circle-alert",
}
UNKNOWN_STATE_ICON = "circle-help"  # a state this release does not know


# What a user action toward each state is called, and the confirmation it asks for.
USER_ACTIONS: dict[str, tuple[str, str]] = {
    Status.REGISTERED: ("Register", "Run the reachability check now and register it if it passes?"),
    Status.CONNECTED: ("Connect", "Start managing it: probes continue and data is collected."),
    Status.MAINTENANCE: ("Start maintenance", "Take it offline for maintenance? Probes stop."),
    Status.IGNORED: ("Ignore", "Stop managing it? Probes stop; collected data is kept."),
    Status.NOT_FOUND: ("Mark not found", "Mark it not found?"),
    Status.DELETED: ("Delete", "Delete it? Collected data is purged; its history is kept."),
}
# Leaving maintenance is the same edge whichever state it returns to.
END_MAINTENANCE = ("End maintenance", "End maintenance and return to {target}?")


def user_action(current: str, target: str) -> tuple[str, str]:
    """(button label, confirmation text) for moving from ``current`` to ``target``."""
    if current == Status.MAINTENANCE and target != Status.DELETED:
        label, confirm = END_MAINTENANCE
        return label, confirm.format(target=Status(target).label)
    if current in (Status.IGNORED, Status.NOT_FOUND) and target == Status.REGISTERED:
        return "Register again", USER_ACTIONS[target][1]
    return USER_ACTIONS[target]


# Bulk transitions offered above the table: (form value, label). "resume" ends maintenance,
# each connection returning to the state it entered maintenance from.
BULK_ACTIONS = [
    (Status.REGISTERED, "Register"),
    (Status.CONNECTED, "Connect"),
    (Status.MAINTENANCE, "Start maintenance"),
    ("resume", "End maintenance"),
    (Status.IGNORED, "Ignore"),
    (Status.DELETED, "Delete"),
]


# ---- locations ---------------------------------------------------------------------------------
# How many failing locations fail a round (connections.models.Quorum; probing/rounds.needed):
# the edit page offers the numbers up to the count of locations, the API every number the model
# takes.


def quorum_choices(locations: int, current: str = "") -> list[tuple[str, str]]:
    """A majority (the default), any, all, then 1 to ``locations`` (at most the model's
    maximum); ``current`` is kept when it is a number above them (locations removed since)."""
    from .models.location import QUORUM_NUMBER_MAX, Quorum

    most = min(max(locations, 0), QUORUM_NUMBER_MAX)
    numbers = [str(n) for n in range(1, most + 1)]
    if current and current not in Quorum.values and current not in numbers:
        numbers.append(current)
    return [
        *Quorum.choices,
        *((n, f"{n} location{'' if n == '1' else 's'}") for n in numbers),
    ]


def quorum_text(quorum: str) -> str:
    """A quorum as a sentence's words: "a majority", "any", "all", "2 locations"."""
    if quorum == "":
        return "a majority"
    if quorum in ("any", "all"):
        return quorum
    return f"{quorum} location{'' if quorum == '1' else 's'}"
