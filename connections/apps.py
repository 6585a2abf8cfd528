from django.apps import AppConfig


def _scopes_of_connections(ids: list[int], using: str) -> set[str]:
    """The live scopes connections are seen in: their owners' and their environments'."""
    from environments.models import Environment

    from .models import Connection

    owners = Connection.all_objects.using(using).filter(pk__in=ids)
    scopes = {f"o:{owner}" for owner in owners.values_list("owner_id", flat=True)}
    members = Environment.connections.through.objects.using(using).filter(connection_id__in=ids)
    scopes.update(f"e:{env}" for env in members.values_list("environment_id", flat=True))
    return scopes


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .periodic import ensure_periodic_tasks

        post_migrate.connect(ensure_periodic_tasks, sender=self)

        from core import access
        from live import stamp

        from . import mentions
        from .models import (
            Connection,
            ConnectionTransition,
            Dependency,
            ProbeResult,
            ProbeRollup,
        )

        # what a polled page shows of a connection changes when one of these rows does
        stamp.watch(Connection, lambda c: ({c.pk}, {f"o:{c.owner_id}"}))
        for model in (ConnectionTransition, ProbeResult, ProbeRollup):
            stamp.watch(model, lambda row: ({row.connection_id}, set()))
        stamp.watch(Dependency, lambda d: ({d.child_id, d.parent_id}, set()))
        stamp.connection_model(Connection)
        stamp.resolve(_scopes_of_connections)

        from credentials.models import on_sent_changed

        from .probing.scheduling import reprobe_after_new_credential

        # a credential saved with another secret or bounds: its connections are probed again
        on_sent_changed(reprobe_after_new_credential)

        access.register(
            Connection,
            access.Policy(
                environments="environments",
                roles={
                    access.VIEW: access.EVERY_ROLE,
                    access.CHANGE: ("editor",),
                    access.TRANSITION: ("editor",),
                },
                staff=frozenset({access.VIEW, access.CHANGE, access.TRANSITION}),
                permissions={access.TRANSITION: "connections.transition_connection"},
            ),
        )

        mentions.register(
            "connection",
            lambda user, ids: set(
                Connection.all_objects.restrict(user)
                .filter(pk__in=ids)
                .values_list("pk", flat=True)
            ),
        )
