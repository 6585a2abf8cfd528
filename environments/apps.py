from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "environments"
    verbose_name = "Environments"

    def ready(self) -> None:
        from core import access

        from .models import Environment, EnvironmentMembership

        access.register_membership(access.Membership(Environment, EnvironmentMembership))
        access.register(
            Environment,
            access.Policy(
                environments="self",
                roles={access.VIEW: access.EVERY_ROLE, access.CHANGE: ("editor",)},
                staff=frozenset({access.VIEW, access.CHANGE}),
            ),
        )
