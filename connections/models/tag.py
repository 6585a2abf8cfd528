"""Tags: short labels a team puts on connections (``team=payments``, ``prod``, ``eu-west``) to
find, filter and act on them together."""

from django.db import models

from core.text import validate_tag


class Tag(models.Model):
    # stored as typed after connections.tagging.clean_tag: lower case, no space
    name = models.CharField(max_length=50, unique=True, validators=[validate_tag])

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name
