"""Kubernetes: the official client, built from the connection's kubeconfig or token credential.

``GET /version`` (server version), ``/livez`` where RBAC allows it, and the uid of the
``kube-system`` namespace as the cluster's identity. 401/403 on /version is an authentication
failure. The client blocks, so it runs in a bounded thread pool.
"""

from __future__ import annotations

import asyncio
import base64
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import urllib3
import yaml
from django.conf import settings
from kubernetes import client as k8s
from kubernetes.config import ConfigException, load_kube_config_from_dict

from .base import Probe, ProbeFailed, ProbeOutcome, refusal_for
from .registry import register_probe


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=settings.PROBE_KUBERNETES_THREADS, thread_name_prefix="k8s-probe"
    )


def kubeconfig_for(connection) -> tuple[dict[str, Any], str | None]:
    """The kubeconfig dict and context to use: the credential's own, or one built from a token."""
    credential = connection.credential
    if credential is None:
        raise ProbeFailed("invalid", "a Kubernetes connection needs a kubeconfig or token")
    secret = credential.get_secret()
    if "kubeconfig" in secret:
        return yaml.safe_load(secret["kubeconfig"]), connection.metadata.get("context") or None
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


def api_client_for(connection) -> k8s.ApiClient:
    """The official client for a Kubernetes connection (no retries; link-local refused)."""
    config, context = kubeconfig_for(connection)
    configuration = k8s.Configuration()
    load_kube_config_from_dict(
        config, context=context, client_configuration=configuration, persist_config=False
    )
    configuration.retries = False
    refusal = refusal_for(configuration.host)
    if refusal:
        raise ProbeFailed("refused", refusal)
    return k8s.ApiClient(configuration)


def _get_raw(api: k8s.ApiClient, path: str, timeout: tuple[float, float]):
    """A GET the generated API classes do not offer (/livez), with the client's own auth."""
    request = api.param_serialize(
        method="GET",
        resource_path=path,
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=timeout)
    response.read()
    return response


def failure_from(exc: Exception) -> ProbeFailed:
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
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        return ProbeFailed("connect", f"cannot reach the API server: {reason}")
    if isinstance(reason, urllib3.exceptions.SSLError):
        return ProbeFailed("tls", f"TLS error: {reason}")
    if isinstance(reason, urllib3.exceptions.TimeoutError):
        return ProbeFailed("timeout", "the API server did not answer in time")
    if isinstance(exc, ConfigException | ValueError | KeyError | TypeError):
        return ProbeFailed("invalid", f"unusable kubeconfig: {exc}")
    return ProbeFailed("connect", f"cannot reach the API server: {reason}")


class KubernetesProbe(Probe):
    kind = "kubernetes"

    def run_blocking(self, connection) -> ProbeOutcome:
        connect, total = self.timeouts()
        try:
            timeout = (connect, total)
            with api_client_for(connection) as api:
                version = k8s.VersionApi(api).get_code(_request_timeout=timeout)
                metadata = {
                    "version": version.git_version,
                    "platform": version.platform,
                    "server": api.configuration.host,
                }
                livez = _get_raw(api, "/livez", timeout)
                if livez.status == 200:
                    metadata["livez"] = "ok"
                elif livez.status not in (401, 403, 404):  # /livez where RBAC allows it
                    raise ProbeFailed("http", f"/livez answered HTTP {livez.status}", livez.status)
                try:
                    namespace = k8s.CoreV1Api(api).read_namespace(
                        "kube-system", _request_timeout=timeout
                    )
                    metadata["cluster_id"] = namespace.metadata.uid
                except k8s.exceptions.ApiException as exc:
                    if exc.status not in (403, 404):
                        raise
        except ProbeFailed:
            raise
        except Exception as exc:
            raise failure_from(exc) from exc
        return ProbeOutcome(ok=True, status_code=200, metadata=metadata)

    async def check(self, connection, client) -> ProbeOutcome:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_pool(), self.run_blocking, connection)

    async def probe(self, connection, client) -> ProbeOutcome:
        # Wait for a free thread before the probe's clock starts: a busy pool is not the
        # cluster's fault, and must not read as a timeout.
        async with _slots():
            return await super().probe(connection, client)


_loop_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _loop_slots:
        _loop_slots[loop] = asyncio.Semaphore(settings.PROBE_KUBERNETES_THREADS)
    return _loop_slots[loop]


def encode_ca(pem: bytes | str) -> str:
    """Certificate-authority data as a kubeconfig carries it."""
    raw = pem.encode() if isinstance(pem, str) else pem
    return base64.b64encode(raw).decode()


register_probe(KubernetesProbe())
