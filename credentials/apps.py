from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Credentials"

    def ready(self) -> None:
        from core import access
        from live import stamp

        from . import checks, crypto  # noqa: F401  (checks: registers the system checks)
        from .models import Credential

        # staff have no rights of their own over secrets: owners, members, superusers
        access.register(
            Credential,
            access.Policy(
                environments="environments",
                roles={access.VIEW: access.EVERY_ROLE, access.USE: ("editor",)},
            ),
        )
        stamp.watch(Credential)
        crypto.holds_tokens(Credential, "secret_ciphertext")
