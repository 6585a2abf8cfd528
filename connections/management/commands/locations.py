"""The locations connections are probed from (docs/locations.md).

    python manage.py locations                    # each location, its state and workers
    python manage.py locations add eu-west [--description "Frankfurt"]
    python manage.py locations remove eu-west

A worker joins a location with ``PROBE_LOCATION=eu-west celery -A meshplay worker -Q
probes.eu-west``. Removing a location stops its rounds; its results stay in the history."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from connections.locating import location_rows
from connections.locations import Taken, add_location, remove_location
from connections.models import Location
from connections.models.location import validate_location_name
from core.text import validate_name


class Command(BaseCommand):
    help = "List, add or remove the locations connections are probed from."

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", choices=("list", "add", "remove"), default="list")
        parser.add_argument("name", nargs="?")
        parser.add_argument("--description", default="")

    def handle(self, action, name, description, **_):
        if action == "list":
            for row in location_rows():
                self.stdout.write(
                    f"{row.name}\t{row.state_text}\tworkers={row.workers}\t"
                    f"probes/min={row.probes_per_minute:.0f}"
                )
            return
        if not name:
            raise CommandError(f"Say which location to {action}.")
        if action == "add":
            try:
                validate_location_name(name)
                if description:
                    validate_name(description)  # one line, as the page's form
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            try:
                add_location(name, description[:200])
            except Taken:
                self.stdout.write(f"already there: {name}")
                return
            self.stdout.write(f"added: {name}")
            return
        pk = Location.objects.filter(name=name).values_list("pk", flat=True).first()
        if pk is None or remove_location(pk) is None:
            raise CommandError(f"There is no location {name!r}.")
        self.stdout.write(f"removed: {name}")
