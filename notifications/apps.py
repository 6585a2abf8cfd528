from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from connections import hooks
        from core import access
        from credentials import crypto

        from .events import record_event, record_partial
        from .models import Channel
        from .periodic import ensure_periodic_tasks

        access.register(Channel, access.shared_by_one_environment())
        crypto.holds_tokens(Channel, "config_encrypted")  # key rotation re-encrypts it too
        # the outbox row is written by the same transaction as the transition it reports
        hooks.on_transition(record_event)
        hooks.on_partial(record_partial)
        post_migrate.connect(ensure_periodic_tasks, sender=self)
