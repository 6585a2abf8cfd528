from django.db import models


class ChangeStamp(models.Model):
    """One row: a number that grows after every committed change the pages could show."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"change stamp {self.value}"
