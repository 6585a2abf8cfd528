from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "environments"
    verbose_name = "Environments"

    def ready(self) -> None:
        from core import access
        from live import stamp

        from .models import Environment, EnvironmentMembership

        stamp.watch(Environment, lambda e: (set(), {f"e:{e.pk}", f"u:{e.owner_id}"}))
        stamp.watch(
            EnvironmentMembership, lambda m: (set(), {f"e:{m.environment_id}", f"u:{m.user_id}"})
        )
        access.register_membership(access.Membership(Environment, EnvironmentMembership))
        access.register(
            Environment,
            access.Policy(
                environments="self",
                roles={access.VIEW: access.EVERY_ROLE, access.CHANGE: ("editor",)},
                staff=frozenset({access.VIEW, access.CHANGE}),
            ),
        )
