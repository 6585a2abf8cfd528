"""Import a kubeconfig: every context becomes a Kubernetes connection with its own credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from connections.probing.probes import ProbeOutcome, probe_many
from credentials.models import Credential

from . import creating
from .identity import endpoint_identity
from .models import Connection


@dataclass
class ImportReport:
    created: list[tuple[Connection, ProbeOutcome]] = field(default_factory=list)
    # (context, the connection already tracking it, if the user may see it)
    present: list[tuple[str, Connection | None]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def split_contexts(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(context name, server URL, a kubeconfig holding only that context) per context."""
    clusters = {c["name"]: c for c in document.get("clusters") or []}
    users = {u["name"]: u for u in document.get("users") or []}
    result = []
    for context in document.get("contexts") or []:
        spec = context.get("context") or {}
        cluster = clusters[spec["cluster"]]
        user = users.get(spec.get("user"))
        single = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [user] if user else [],
            "contexts": [context],
            "current-context": context["name"],
        }
        result.append((context["name"], cluster["cluster"]["server"], single))
    return result


def _credential_name(user: Any, context: str) -> str:
    base = f"kubeconfig: {context}"[:190]
    name, n = base, 1
    while Credential.objects.filter(owner=user, name=name).exists():
        n += 1
        name = f"{base} ({n})"
    return name


def import_kubeconfig(
    document: dict[str, Any],
    *,
    user: Any,
    environments=(),
    visible=None,
    allow_insecure_tls: bool = False,
) -> ImportReport:
    report = ImportReport()
    pending: list[tuple[Connection, Credential]] = []
    seen: set[str] = set()
    for context, server, single in split_contexts(document):
        identity = endpoint_identity("kubernetes", server)  # never raises; validation below
        existing = Connection.objects.filter(identity=identity).first()
        if existing is not None or identity in seen:
            shown = (
                existing
                if visible is not None and existing and visible.filter(pk=existing.pk).exists()
                else None
            )
            report.present.append((context, shown))
            continue
        seen.add(identity)
        credential = Credential(
            name="",
            kind=Credential.Kind.KUBECONFIG,
            owner=user,
            allow_insecure_tls=allow_insecure_tls,
        )
        try:
            credential.set_secret({"kubeconfig": yaml.safe_dump(single, sort_keys=False)})
            candidate = creating.prepare_manual_connection(
                name=context[:200],
                kind="kubernetes",
                url=server,
                user=user,
                credential=credential,
                metadata={"context": context},
            )
        except ValidationError as exc:
            report.errors.append((context, "; ".join(exc.messages)))
            continue
        pending.append((candidate, credential))

    outcomes = probe_many([candidate for candidate, _ in pending])
    for (candidate, credential), outcome in zip(pending, outcomes, strict=True):
        try:
            with transaction.atomic():
                credential.name = _credential_name(user, candidate.name)
                credential.save()
                candidate.credential = credential
                connection = creating.insert_manual_connection(
                    candidate, outcome, user=user, environments=environments
                )
        except creating.DuplicateConnection:  # added meanwhile by someone else
            report.present.append((candidate.name, None))
            continue
        report.created.append((connection, outcome))
    return report
