"""A connection's parents: what it depends on (a discovered connection also depends on its
cluster, implicitly, through ``Connection.cluster``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from .connection import Connection


class Dependency(models.Model):
    child = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="parent_links")
    parent = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="child_links")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "dependencies"
        constraints = [
            models.UniqueConstraint(fields=("child", "parent"), name="unique_dependency"),
            models.CheckConstraint(condition=~Q(child=F("parent")), name="dependency_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.child_id} depends on {self.parent_id}"
