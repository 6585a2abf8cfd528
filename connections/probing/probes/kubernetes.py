"""Kubernetes, from the connection's kubeconfig or token credential.

The probe is async-native: TLS context and headers built from the kubeconfig, then
``GET /version`` (server version), ``/livez`` where RBAC allows it, and the uid of the
``kube-system`` namespace (the cluster's identity) with the same aiohttp session, deadline and
address guard as every other kind: a server that trickles bytes costs its probe's deadline and
nothing more. 401/403 on /version is an authentication failure. Discovery lists resources with
the official client (``api_client_for``), under the same bounds, inside the egress guard (its
sockets checked and shut at ``DISCOVERY_PASS_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
import urllib3
from django.core.exceptions import ValidationError
from kubernetes import client as k8s
from kubernetes.config import ConfigException, load_kube_config_from_dict

from connections.probing.probes.base import Answer, HttpProbe, ProbeFailed, ProbeOutcome
from connections.probing.probes.registry import register_probe
from core.egress import AddressRefused, refusal_for
from credentials.bounds import not_sent, permits
from credentials.kubeconfig import parse_kubeconfig


def kubeconfig_for(connection) -> tuple[dict[str, Any], str | None]:
    """The kubeconfig dict and context to use: the credential's own (parsed with the same
    bounds as at save), or one built from a token and the connection's URL."""
    credential = connection.credential
    if credential is None:
        raise ProbeFailed("invalid", "a Kubernetes connection needs a kubeconfig or token")
    secret = credential.get_secret()  # nothing is sent before api_client_for checks the bounds
    if "kubeconfig" in secret:
        key = (credential.pk, credential.secret_ciphertext, credential.allow_insecure_tls)
        document = _DOCUMENTS.get_or_build(key, lambda: _parse(secret, credential))
        return document, connection.metadata.get("context") or None
    cluster: dict[str, Any] = {"server": connection.url}
    ca = connection.metadata.get("certificate_authority_data")
    if ca:
        cluster["certificate-authority-data"] = ca
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": secret["token"]}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    return config, "ctx"


def _parse(secret: dict[str, str], credential) -> dict[str, Any]:
    try:
        return parse_kubeconfig(
            secret["kubeconfig"], allow_insecure_tls=credential.allow_insecure_tls
        )
    except ValidationError as exc:
        raise ProbeFailed("invalid", f"unusable kubeconfig: {' '.join(exc.messages)}") from None


def api_client_for(connection) -> k8s.ApiClient:
    """The official client for a Kubernetes connection (no retries, no proxy, link-local
    refused), only for a server inside the credential's endpoint bounds."""
    config, context = kubeconfig_for(connection)
    configuration = k8s.Configuration()
    load_kube_config_from_dict(
        config, context=context, client_configuration=configuration, persist_config=False
    )
    configuration.retries = False
    if configuration.proxy:
        raise ProbeFailed("bounds", "the kubeconfig names a proxy, which would receive the secret")
    if not permits(connection.credential, configuration.host):
        raise ProbeFailed("bounds", not_sent(connection.credential, configuration.host))
    refusal = refusal_for(configuration.host)
    if refusal:
        raise ProbeFailed("bounds", refusal)
    return k8s.ApiClient(configuration)


def failure_from(exc: Exception) -> ProbeFailed:
    refused = _refusal_in(exc)
    if refused is not None:  # the egress guard's, wrapped by urllib3 as a connection error
        return ProbeFailed("bounds", str(refused))
    if isinstance(exc, k8s.exceptions.ApiException):
        if exc.status == 0:  # the client's wrapping of a transport error
            if "SSL" in str(exc.reason):
                return ProbeFailed("tls", f"TLS error: {str(exc.reason).splitlines()[-1]}")
            return ProbeFailed("connect", f"cannot reach the API server: {exc.reason}")
        if exc.status in (401, 403):
            return ProbeFailed(
                "auth", f"authentication failed (HTTP {exc.status}: {exc.reason})", exc.status
            )
        return ProbeFailed("http", f"API error (HTTP {exc.status}: {exc.reason})", exc.status)
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return ProbeFailed("dns", f"cannot reach the API server: {reason}")
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        cause = reason.__cause__ or reason.__context__
        cls = "refused" if isinstance(cause, ConnectionRefusedError) else "connect"
        return ProbeFailed(cls, f"cannot reach the API server: {reason}")
    if isinstance(reason, urllib3.exceptions.SSLError):
        return ProbeFailed("tls", f"TLS error: {reason}")
    if isinstance(reason, urllib3.exceptions.TimeoutError):
        return ProbeFailed("timeout", "the API server did not answer in time")
    if isinstance(exc, ConfigException | ValueError | KeyError | TypeError):
        return ProbeFailed("invalid", f"unusable kubeconfig: {exc}")
    return ProbeFailed("connect", f"cannot reach the API server: {reason}")


def _refusal_in(exc: BaseException) -> AddressRefused | None:
    """The egress guard's refusal among an exception and its causes, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, AddressRefused):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass(frozen=True)
class Target:
    """Where and how the async probe talks to an API server (nothing here is logged)."""

    server: str
    ssl: Any
    server_hostname: str | None
    headers: dict[str, str]


def _context_parts(document: dict[str, Any], context: str | None):
    contexts = {c["name"]: c.get("context") or {} for c in document.get("contexts") or []}
    name = context or document.get("current-context") or next(iter(contexts), None)
    if name not in contexts:
        raise ProbeFailed("invalid", f"the kubeconfig has no context '{str(name)[:100]}'")
    spec = contexts[name]
    clusters = {c["name"]: c.get("cluster") or {} for c in document.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in document.get("users") or []}
    return clusters.get(spec.get("cluster"), {}), users.get(spec.get("user"), {})


class _LRU(OrderedDict):
    """A small bounded cache shared by the probes' threads (least recently used goes)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def get_or_build(self, key, build):
        with self.lock:
            if key in self:
                self.move_to_end(key)
                return self[key]
        value = build()
        with self.lock:
            self[key] = value
            while len(self) > self.size:
                self.popitem(last=False)
        return value


_CONTEXTS = _LRU(256)  # TLS contexts by what they are made of: one per CA, not per connection
_DOCUMENTS = _LRU(256)  # parsed kubeconfigs by credential and ciphertext: one parse per secret
_TARGETS = _LRU(4096)  # targets by connection, credential and its ciphertext


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context of a cluster, shared by every connection made of the same parts."""
    key = (
        cluster.get("certificate-authority-data"),
        cluster.get("insecure-skip-tls-verify") is True,
        user.get("client-certificate-data"),
        user.get("client-key-data"),
    )
    return _CONTEXTS.get_or_build(key, lambda: _build_ssl_context(cluster, user))


def _build_ssl_context(cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext:
    """TLS as the kubeconfig says: its CA (else the system's), its client certificate, and
    verification off only where the stored kubeconfig was accepted with that opt-in."""
    ca = cluster.get("certificate-authority-data")
    try:
        context = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca else None)
    except (ValueError, ssl.SSLError, UnicodeDecodeError) as exc:
        raise ProbeFailed(
            "invalid", "the kubeconfig's certificate-authority-data is not a PEM certificate"
        ) from exc
    if cluster.get("insecure-skip-tls-verify") is True:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    if cert and key:
        # ssl loads a client certificate from files only: a private folder, removed at once
        with tempfile.TemporaryDirectory(prefix="meshplay-k8s-") as folder:
            cert_path, key_path = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
            for path, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(base64.b64decode(data))
            try:
                context.load_cert_chain(cert_path, key_path)
            except (ssl.SSLError, ValueError) as exc:
                raise ProbeFailed(
                    "invalid", "the kubeconfig's client certificate or key cannot be loaded"
                ) from exc
    return context


def target_for(connection) -> Target:
    """The server, TLS context and auth headers of a Kubernetes connection, inside the
    credential's endpoint bounds (a refused ProbeFailed outside them)."""
    credential = connection.credential
    key = (
        connection.url,
        json.dumps(connection.metadata.get("certificate_authority_data")),
        json.dumps(connection.metadata.get("context")),
        getattr(credential, "pk", None),
        getattr(credential, "secret_ciphertext", None),
        tuple(getattr(credential, "endpoints", None) or ()),
    )
    return _TARGETS.get_or_build(key, lambda: _build_target(connection))


def _build_target(connection) -> Target:
    credential = connection.credential
    document, context = kubeconfig_for(connection)
    cluster, user = _context_parts(document, context)
    server = str(cluster.get("server") or "").rstrip("/")
    if cluster.get("proxy-url"):
        raise ProbeFailed("bounds", "the kubeconfig names a proxy, which would receive the secret")
    if not permits(credential, server):
        raise ProbeFailed("bounds", not_sent(credential, server))
    headers = {"Accept": "application/json"}
    if isinstance(user.get("token"), str):
        headers["Authorization"] = f"Bearer {user['token']}"
    elif isinstance(user.get("username"), str) and isinstance(user.get("password"), str):
        headers["Authorization"] = aiohttp.BasicAuth(
            user["username"], user["password"], encoding="utf-8"
        ).encode()
    secure = server.startswith("https://")
    target = Target(
        server=server,
        ssl=_ssl_context(cluster, user) if secure else False,
        server_hostname=cluster.get("tls-server-name") if secure else None,
        headers=headers,
    )
    return target


class KubernetesProbe(HttpProbe):
    """``GET /version``, ``/livez`` where RBAC allows it, and the ``kube-system`` uid, with the
    same async client, deadline and guard as every other kind."""

    kind = "kubernetes"

    async def check(self, connection, client: aiohttp.ClientSession) -> ProbeOutcome:
        # parsing a kubeconfig and building TLS contexts costs CPU: never on the event loop
        target = await asyncio.to_thread(target_for, connection)

        async def get(path: str, *, tolerate: tuple[int, ...] = ()) -> Answer | None:
            try:
                return await self.get(
                    client,
                    target.server + path,
                    target.headers,
                    ssl=target.ssl,
                    server_hostname=target.server_hostname,
                )
            except ProbeFailed as failed:
                if failed.outcome.status_code in tolerate:
                    return None
                raise

        version = await get("/version")
        try:
            info = version.json()
            if not isinstance(info, dict) or not info.get("gitVersion"):
                raise ValueError
        except (ValueError, RecursionError):
            raise ProbeFailed("body", "/version did not answer a Kubernetes version") from None
        metadata = {
            "version": info.get("gitVersion", ""),
            "platform": info.get("platform", ""),
            "server": target.server,
        }
        livez = await get("/livez", tolerate=(401, 403))
        if livez is not None:
            if livez.status_code == 200:
                metadata["livez"] = "ok"
            elif livez.status_code != 404:
                raise ProbeFailed(
                    "http", f"/livez answered HTTP {livez.status_code}", livez.status_code
                )
        namespace = await get("/api/v1/namespaces/kube-system", tolerate=(401, 403))
        if namespace is not None and namespace.status_code == 200:
            try:
                uid = (namespace.json().get("metadata") or {}).get("uid")
            except (ValueError, AttributeError, RecursionError):
                uid = None
            if isinstance(uid, str) and uid:
                metadata["cluster_id"] = uid
        return ProbeOutcome(ok=True, status_code=version.status_code, metadata=metadata)


def encode_ca(pem: bytes | str) -> str:
    """Certificate-authority data as a kubeconfig carries it."""
    raw = pem.encode() if isinstance(pem, str) else pem
    return base64.b64encode(raw).decode()


register_probe(KubernetesProbe())
