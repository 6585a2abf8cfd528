"""What a user keeps of the table between visits: the columns they chose to see."""

from django.conf import settings
from django.db import models


class TableColumns(models.Model):
    """The optional columns a user hides in the connections table (the table page and every
    environment's page alike). No row: the defaults (connections.table.columns)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="table_columns"
    )
    hidden = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "table columns"
        verbose_name_plural = "table columns"

    def __str__(self) -> str:
        return f"columns of {self.user_id}"
