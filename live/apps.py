from django.apps import AppConfig
from django.core import checks


@checks.register(checks.Tags.compatibility, deploy=True)
def release_named(app_configs=None, **kwargs):
    """A deploy (DEBUG off) names its release for the ETags (``LIVE_RELEASE``). A deploy
    check (``check --deploy``): only the web needs it, and its WSGI application refuses to
    load without it; workers, beat and management commands (``health``, ``migrate``) run."""
    from .conditional import release_problem

    problem = release_problem()
    return [checks.Error(problem, id="live.E001")] if problem else []


class LiveConfig(AppConfig):
    name = "live"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import stamp

        stamp.connect_signals()
