"""The one rule for making and changing channels and rules, called by the pages, the API and
the admin: who may, what a destination may be, and what is kept of it (encrypted) and shown
(a hint without path, query or credentials)."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import EmailValidator
from django.db import transaction

from connections.kinds import kind_choices
from connections.models import Connection
from core import access
from core.egress import address_refusal, url_refusal
from environments.models import Environment

from .choices import DEFAULT_CATEGORIES, Category, ChannelKind
from .models import Channel, Rule

MAX_URL = 2000
MAX_RECIPIENTS = 10
MAX_APPRISE_URLS = 10


def _hint(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def clean_destination(kind: str, destination: Any) -> tuple[dict[str, Any], str]:
    """(config to encrypt, hint to show) for a destination, or ValidationError on
    ``destination`` with a message that never repeats the value."""
    if not isinstance(destination, str) or not destination.strip():
        raise ValidationError({"destination": "Give a destination."})
    text = destination.strip()
    if len(text) > MAX_URL * MAX_APPRISE_URLS or any(ord(c) < 32 for c in text.replace("\n", "")):
        raise ValidationError({"destination": "The destination is too long or holds controls."})
    if kind == ChannelKind.WEBHOOK:
        if len(text) > MAX_URL:
            raise ValidationError({"destination": f"A URL is at most {MAX_URL} characters."})
        refusal = url_refusal(text)
        if refusal:
            raise ValidationError({"destination": f"This URL cannot be used: {refusal}."})
        return {"url": text}, _hint(text)
    if kind == ChannelKind.EMAIL:
        addresses = [a.strip() for a in text.replace("\n", ",").split(",") if a.strip()]
        if not addresses or len(addresses) > MAX_RECIPIENTS:
            raise ValidationError(
                {"destination": f"Give 1 to {MAX_RECIPIENTS} addresses, comma-separated."}
            )
        validate = EmailValidator()
        for address in addresses:
            try:
                validate(address)
            except ValidationError:
                raise ValidationError(
                    {"destination": "One of the addresses is not an email address."}
                ) from None
        return {"to": addresses}, ", ".join(addresses)
    if kind == ChannelKind.APPRISE:
        return _clean_apprise(text)
    raise ValidationError({"kind": "Choose a kind of channel."})


def _clean_apprise(text: str) -> tuple[dict[str, Any], str]:
    urls = split_apprise(text)
    if not urls or len(urls) > MAX_APPRISE_URLS:
        raise ValidationError({"destination": f"Give 1 to {MAX_APPRISE_URLS} Apprise URLs."})
    hints = []
    for n, url in enumerate(urls, 1):
        try:
            apprise_service(url)
        except ValueError as exc:
            raise ValidationError({"destination": f"URL {n}: {exc}"}) from None
        hints.append(f"{url.split('://', 1)[0].lower()}://…")
    return {"urls": urls}, ", ".join(hints)


def split_apprise(text: str) -> list[str]:
    """The service URLs Apprise itself reads in ``text`` (it splits on spaces, commas and
    semicolons, except inside a URL's query): what is checked is what it will send to."""
    from apprise.utils.parse import parse_urls

    return [url for url in parse_urls(text) if url.strip()]


def apprise_service(url: str) -> Any:
    """The Apprise service of exactly one URL, of a service offered here, at an address the
    guard allows; ValueError (a message without the URL) otherwise. Checked when a channel is
    saved and again before every send: a stored URL never reaches Apprise unchecked."""
    import apprise

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in settings.NOTIFY_APPRISE_SCHEMES:
        raise ValueError(
            f"the service '{scheme[:20]}' is not offered here "
            f"(offered: {', '.join(sorted(settings.NOTIFY_APPRISE_SCHEMES))})."
        )
    if len(url) > MAX_URL or split_apprise(url) != [url]:
        raise ValueError(f"this is not one valid {scheme}:// URL.")
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None or scheme not in _protocols(type(plugin)):
        raise ValueError(f"this is not a valid {scheme}:// URL.")
    host = getattr(plugin, "host", None)
    # a literal address is judged now; a name (or what a service keeps where a host would be:
    # a token) is judged by the addresses it resolves to, at the socket, when it is contacted
    literal = host.strip("[]") if isinstance(host, str) else ""
    refusal = address_refusal(literal, literal) if _is_address(literal) else None
    if refusal:
        raise ValueError(f"it cannot be used: {refusal}.")
    return plugin


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _protocols(plugin_class: type) -> set[str]:
    found: set[str] = set()
    for attr in ("protocol", "secure_protocol"):
        value = getattr(plugin_class, attr, None)
        found.update([value] if isinstance(value, str) else value or ())
    return found


def manageable_environments(user: Any):
    return Environment.objects.restrict(user, "change")


def check_environment(user: Any, environment: Environment | None) -> None:
    if (
        environment is not None
        and not manageable_environments(user).filter(pk=environment.pk).exists()
    ):
        raise ValidationError(
            {"environment": "Only an environment's owner and editors may give it channels."}
        )


def can_manage(user: Any, channel: Channel) -> bool:
    return access.may(user, channel, access.CHANGE)


@transaction.atomic
def create_channel(
    user: Any,
    *,
    name: str,
    kind: str,
    destination: str,
    environment: Environment | None = None,
    rule: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[Channel, str]:
    """A channel and its first rule (default: every visible connection, the default changes).
    Returns the channel and, for a webhook, its signing secret: shown once, never again."""
    check_environment(user, environment)
    config, hint = clean_destination(kind, destination)
    signing_secret = ""
    if kind == ChannelKind.WEBHOOK:
        signing_secret = secrets.token_urlsafe(32)
        config["secret"] = signing_secret
    channel = Channel(
        name=name, kind=kind, owner=user, environment=environment, destination_hint=hint, **options
    )
    channel.set_config(config)
    channel.full_clean(exclude=["config_encrypted", "owner"])
    channel.save()
    save_rule(user, channel, Rule(channel=channel), **(rule or {}))
    return channel, signing_secret


@transaction.atomic
def update_channel(user: Any, channel: Channel, destination: str | None = None, **fields: Any):
    """Change a channel; a new destination replaces the stored one (a blank one keeps it)."""
    if not can_manage(user, channel):
        raise PermissionDenied("You may not change this channel.")
    if "environment" in fields and fields.pop("environment") != channel.environment:
        # an environment's channel stays that environment's (its owner is whoever made it:
        # moving it would let an editor point the owner's whole view at their own receiver)
        raise ValidationError({"environment": "A channel's environment cannot be changed."})
    was_enabled = channel.enabled
    for name, value in fields.items():
        setattr(channel, name, value)
    if destination:
        config, hint = clean_destination(channel.kind, destination)
        if channel.kind == ChannelKind.WEBHOOK:
            config["secret"] = channel.config.get("secret") or secrets.token_urlsafe(32)
        channel.set_config(config)
        channel.destination_hint = hint
    channel.full_clean(exclude=["config_encrypted", "owner"])
    channel.save()
    if was_enabled and not channel.enabled:
        cancel_pending(channel)
    return channel


def cancel_pending(channel: Channel) -> None:
    """A disabled channel drops what it had not sent (it would be stale when enabled again) and
    forgets its open failures (no recovery will follow them)."""
    from .choices import MessageStatus
    from .models import AlertState, Message

    Message.objects.filter(
        channel=channel, status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]
    ).update(status=MessageStatus.CANCELLED, lease_until=None)
    AlertState.objects.filter(channel=channel).delete()


def rotate_secret(user: Any, channel: Channel) -> str:
    if not can_manage(user, channel):
        raise PermissionDenied("You may not change this channel.")
    config = channel.config
    config["secret"] = secrets.token_urlsafe(32)
    channel.set_config(config)
    channel.save(update_fields=["config_encrypted"])
    return config["secret"]


def save_rule(
    user: Any,
    channel: Channel,
    rule: Rule,
    *,
    environments: list[Environment] | None = None,
    connections: list[Connection] | None = None,
    kinds: list[str] | None = None,
    categories: list[str] | None = None,
) -> Rule:
    """A rule may name only what the channel may hear: environments and connections the user
    may see (for an environment's channel, of that environment), kinds and categories known."""
    environments, connections = list(environments or []), list(connections or [])
    visible_envs = Environment.objects.restrict(user)
    if channel.environment_id is not None:
        visible_envs = visible_envs.filter(pk=channel.environment_id)
    if environments and visible_envs.filter(pk__in=[e.pk for e in environments]).count() != len(
        {e.pk for e in environments}
    ):
        raise ValidationError({"environments": "Choose environments this channel may hear of."})
    visible = Connection.objects.restrict(user)
    if channel.environment_id is not None:
        visible = visible.filter(environments=channel.environment_id)
    if connections and visible.filter(pk__in=[c.pk for c in connections]).count() != len(
        {c.pk for c in connections}
    ):
        raise ValidationError({"connections": "Choose connections this channel may hear of."})
    known = {value for value, _ in kind_choices()}
    kinds = list(dict.fromkeys(kinds or []))
    if any(k not in known for k in kinds):
        raise ValidationError({"kinds": "Choose known kinds."})
    categories = list(dict.fromkeys(categories or DEFAULT_CATEGORIES))
    if any(c not in Category.values for c in categories):
        raise ValidationError({"categories": "Choose known changes."})
    rule.channel = channel
    rule.kinds, rule.categories = kinds, categories
    rule.save()
    rule.environments.set(environments)
    rule.connections.set(connections)
    return rule
