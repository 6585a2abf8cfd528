from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, post_save

        from connections.models import ConnectionTransition
        from core import access

        from .events import record_event
        from .models import Channel

        access.register(Channel, access.shared_by_one_environment())
        from .periodic import ensure_periodic_tasks

        # the outbox row is written by the same transaction as the transition it reports
        post_save.connect(record_event, sender=ConnectionTransition, dispatch_uid="outbox")
        post_migrate.connect(ensure_periodic_tasks, sender=self)
