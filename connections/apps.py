from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .periodic import ensure_periodic_tasks

        post_migrate.connect(ensure_periodic_tasks, sender=self)
