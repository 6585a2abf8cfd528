from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .periodic import ensure_periodic_tasks

        post_migrate.connect(ensure_periodic_tasks, sender=self)

        from core import access

        from . import mentions
        from .models import Connection

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
