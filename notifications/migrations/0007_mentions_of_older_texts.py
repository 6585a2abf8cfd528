"""Texts written before mentions existed (connections.mentions) still name windows and parents
outright. Each one of the shapes those releases wrote gets its mention when the object it names
can be told for sure (one window of that name; one parent of that connection of that name);
otherwise its name is replaced by what a reader who may not see it reads. Transitions first,
then the events copied from them, then the events' quiet notes.

It reads the history once (the rows whose reason has one of the shapes), so on a large history
it takes a while: run migrations before starting the new release's web and workers.
"""

import re

from django.db import migrations

WINDOW = "maintenance window "
ENDED = re.compile(r"^maintenance window (?P<names>.+) ended$")
PARENT = re.compile(r"parent (?P<name>.+) is (?P<state>Disconnected|Not Found|Maintenance)$")
# a probe's reason ends "; parent <name> is <state>"; a quiet note is that note alone


def _window_phrase(name, windows_by_name, at=0, prefix=""):
    """(text, mentions) of "maintenance window <name>" after ``prefix``."""
    phrase = f"{WINDOW}{name}"
    ids = windows_by_name.get(name, [])
    if len(ids) != 1:
        return prefix + "a maintenance window", []
    start = at + len(prefix)
    mention = {
        "kind": "window",
        "id": ids[0],
        "start": start,
        "end": start + len(phrase),
        "unseen": "a maintenance window",
    }
    return prefix + phrase, [mention]


def _parent(reason, parents_by_name):
    note = reason.rfind("; parent ")
    start = note + 2 if note >= 0 else 0
    match = PARENT.match(reason, start)
    if match is None:
        return None
    state = match.group("state")
    ids = parents_by_name.get(match.group("name"), [])
    unseen = f"a connection it depends on is {state}"
    if len(ids) != 1:
        return reason[:start] + unseen, []
    mention = {"kind": "connection", "id": ids[0], "start": start, "end": len(reason),
               "unseen": unseen}
    return reason, [mention]


def _rewrite(text, windows_by_name, parents_of, connection_id):
    """(text, mentions) for one older text, or None when it names nothing."""
    if text.startswith(WINDOW):
        ended = ENDED.match(text)
        if ended:
            phrase, mentions = _window_phrase(ended.group("names"), windows_by_name)
            return phrase + " ended", mentions
        return _window_phrase(text[len(WINDOW):], windows_by_name)
    if text.startswith("under " + WINDOW):
        return _window_phrase(text[len("under " + WINDOW):], windows_by_name, prefix="under ")
    if "parent " in text:
        return _parent(text, parents_of(connection_id))
    return None


def mentions_of_older_texts(apps, schema_editor):
    Transition = apps.get_model("connections", "ConnectionTransition")
    Connection = apps.get_model("connections", "Connection")
    Dependency = apps.get_model("connections", "Dependency")
    Window = apps.get_model("maintenance", "Window")
    Event = apps.get_model("notifications", "Event")

    windows_by_name = {}
    for pk, name in Window.objects.values_list("pk", "name"):
        windows_by_name.setdefault(name, []).append(pk)

    def parents_of(connection_id):
        found = {}
        links = Dependency.objects.filter(child_id=connection_id).values_list(
            "parent_id", "parent__name"
        )
        cluster = Connection.objects.filter(pk=connection_id, cluster__isnull=False).values_list(
            "cluster_id", "cluster__name"
        )
        for pk, name in {*links, *cluster}:
            found.setdefault(name, []).append(pk)
        return found

    def rows(model, field, mentions):
        """The texts of one of the older shapes, written before mentions (none of their own)."""
        shaped = (
            model.objects.filter(**{f"{field}__startswith": WINDOW})
            | model.objects.filter(**{f"{field}__startswith": "under " + WINDOW})
            | model.objects.filter(**{f"{field}__contains": "parent "})
        ).filter(**{mentions: []})
        return list(shaped.values_list("pk", field, "connection_id"))

    for pk, reason, connection_id in rows(Transition, "reason", "mentions"):
        rewritten = _rewrite(reason, windows_by_name, parents_of, connection_id)
        if rewritten is not None:
            text, mentions = rewritten
            Transition.objects.filter(pk=pk).update(reason=text, mentions=mentions)
            Event.objects.filter(transition_id=pk).update(reason=text, mentions=mentions)
    for pk, quiet, connection_id in rows(Event, "quiet", "quiet_mentions"):
        rewritten = _rewrite(quiet, windows_by_name, parents_of, connection_id)
        if rewritten is not None:
            text, mentions = rewritten
            Event.objects.filter(pk=pk).update(quiet=text[:200], quiet_mentions=mentions)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0006_mentions"),
        ("connections", "0013_claimed_due_index"),
        ("maintenance", "0003_window_times_within_bounds"),
    ]

    operations = [migrations.RunPython(mentions_of_older_texts, migrations.RunPython.noop)]
