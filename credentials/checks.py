from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def credential_keys_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not settings.CREDENTIAL_KEYS:
        return [
            checks.Warning(
                "CREDENTIAL_KEYS is not set: secrets at rest use a key derived from SECRET_KEY.",
                hint="Set CREDENTIAL_KEYS to one or more Fernet keys (comma-separated).",
                id="connections.W001",
            )
        ]
    problems = []
    for index, key in enumerate(settings.CREDENTIAL_KEYS):
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                checks.Error(
                    f"CREDENTIAL_KEYS entry {index + 1} is not a valid Fernet key.",
                    hint="Generate one with: python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())'",
                    id="connections.E001",
                )
            )
    return problems
