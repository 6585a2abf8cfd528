# Endpoint bounds: where each credential may be sent. Existing credentials are bound to the
# endpoints they are used with today (and a kubeconfig to its clusters' servers), so nothing
# that works stops working; from now on only the owner widens them.

import ipaddress
import json
from urllib.parse import urlsplit

from django.db import migrations, models

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url):
    """credentials.bounds.origin_of as it was when this migration was written (frozen)."""
    try:
        parts = urlsplit(str(url).strip())
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or DEFAULT_PORTS[scheme]
    except (ValueError, KeyError):
        return None
    if not host or "%" in host or not host.isascii():
        return None  # refused by the bounds from now on: its owner rewrites it in ASCII
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = host.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def bind_existing(apps, schema_editor):
    import yaml

    from credentials import crypto

    Credential = apps.get_model("credentials", "Credential")
    Connection = apps.get_model("connections", "Connection")
    for credential in Credential.objects.all():
        origins = []
        for url in Connection.objects.filter(credential=credential).exclude(
            status="deleted"
        ).values_list("url", flat=True):
            origins.append(_origin(url))
        if credential.kind == "kubeconfig":
            origins = []
            try:
                secret = json.loads(crypto.decrypt(credential.secret_ciphertext))
                document = yaml.safe_load(secret["kubeconfig"]) or {}
                for entry in document.get("clusters") or []:
                    cluster = entry.get("cluster") or {}
                    origins.append(_origin(cluster.get("server", "")))
                    if cluster.get("insecure-skip-tls-verify") is True:
                        # it worked before: keep it working, now with its warning shown
                        credential.allow_insecure_tls = credential.tls_unverified = True
            except Exception:  # unreadable: bound to nowhere until its owner saves it again
                origins = []
        credential.endpoints = list(dict.fromkeys(o for o in origins if o))
        credential.save(update_fields=["endpoints", "allow_insecure_tls", "tls_unverified"])


class Migration(migrations.Migration):

    dependencies = [
        ('credentials', '0001_initial'),
        ('connections', '0002_credential_moved'),
    ]

    operations = [
        migrations.AddField(
            model_name='credential',
            name='endpoints',
            field=models.JSONField(blank=True, default=list, help_text="Origins (scheme://host:port) this secret may be sent to; for a kubeconfig, its clusters' servers."),
        ),
        migrations.AddField(
            model_name='credential',
            name='allow_insecure_tls',
            field=models.BooleanField(default=False, help_text="Accept a kubeconfig cluster with insecure-skip-tls-verify: its server's identity is not checked, so anyone on the path could read the secret.", verbose_name='Allow unverified TLS'),
        ),
        migrations.AddField(
            model_name='credential',
            name='tls_unverified',
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(bind_existing, migrations.RunPython.noop),
    ]
