from django.apps import AppConfig
from django.core import checks


@checks.register(checks.Tags.compatibility)
def release_named(app_configs=None, **kwargs):
    """A deploy (DEBUG off) names its release for the ETags (``LIVE_RELEASE``)."""
    from .conditional import release_problem

    problem = release_problem()
    return [checks.Error(problem, id="live.E001")] if problem else []


class LiveConfig(AppConfig):
    name = "live"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import stamp

        stamp.connect_signals()
