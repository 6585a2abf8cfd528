from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"
    verbose_name = "Maintenance windows"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .periodic import ensure_periodic_tasks

        post_migrate.connect(ensure_periodic_tasks, sender=self)

        from connections import mentions
        from core import access
        from live import stamp

        from .models import Window

        access.register(Window, access.shared_by_one_environment())
        stamp.watch(Window)

        mentions.register(
            "window",
            lambda user, ids: set(
                Window.objects.restrict(user).filter(pk__in=ids).values_list("pk", flat=True)
            ),
        )
