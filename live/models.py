from django.db import models


class ScopeStamp(models.Model):
    """A number per scope of what pages show, grown after every committed change in it.

    Scopes: ``all`` (what staff see: every change), ``o:<user id>`` (the connections a user
    owns), ``e:<environment id>`` (an environment's connections and members), ``u:<user id>``
    (a user's rights), ``g`` (what every page may show: windows, credentials, …)."""

    scope = models.CharField(max_length=40, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.scope}: {self.value}"
