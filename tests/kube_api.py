"""An in-process HTTPS server that speaks enough of the Kubernetes API for tests.

The official ``kubernetes`` Python client can talk to :class:`FakeKubernetesAPI` over
TLS (verified against a throw-away CA) with a bearer token, exactly as it would talk
to a real API server.  Only 127.0.0.1 is ever bound or advertised.

Typical use::

    with FakeKubernetesAPI() as api:
        api.set_token("t0ken", "admin")
        api.add_service("default", "web", {"app": "web"}, [80])
        client = kubernetes.config.new_client_from_config_dict(api.kubeconfig("t0ken"))
        kubernetes.client.CoreV1Api(client).list_service_for_all_namespaces()

What is served (GET only; anything else is 405):

* ``/version``, ``/livez``, ``/readyz``, ``/healthz``
* ``/api/v1/namespaces[/{name}]``, ``/api/v1/nodes[/{name}]``
* ``/api/v1/services``, ``/api/v1/namespaces/{ns}/services[/{name}]``
* ``/apis/apps/v1/deployments``, ``/apis/apps/v1/namespaces/{ns}/deployments[/{name}]``

Behaviour that mirrors the real API server:

* every path needs ``Authorization: Bearer <token>`` (the real server lets anonymous
  users read ``/version`` and the health endpoints; this fake deliberately does not);
  a missing or unknown token is a 401 ``Status``;
* role ``"admin"`` may read everything; role ``"limited"`` gets a 403 ``Status`` on the
  resource types in :attr:`FakeKubernetesAPI.forbidden_resources`;
* unknown paths, and unknown named objects, are a 404 ``Status``;
* lists are ordered by (namespace, name) like etcd keys and support ``limit`` and
  ``continue``.  A continued list is served from the same consistent snapshot as its
  first page (same ``metadata.resourceVersion``), so objects added or removed meanwhile
  are not seen.  A malformed continue token is a 400 ``BadRequest`` (as in the real
  server); a well-formed token whose snapshot is no longer kept (see
  :meth:`FakeKubernetesAPI.expire_continue_tokens`) is a 410 ``Expired``;
* ``metadata.resourceVersion`` is a global counter, returned as a string, that grows on
  every mutation.

``add_*`` methods create or replace an object (a replaced object keeps its uid and
creation time and gets a new resourceVersion); they create a missing namespace on the
fly.  ``remove_*`` raise ``KeyError`` for an object that does not exist.

A slow server is simulated by :meth:`FakeKubernetesAPI.trickle`: the list answers of a
resource type come one byte at a time (status line, headers and body), so a client's
per-read timeout never fires and only a deadline on the whole exchange ends it.

"Down" is simulated by really closing the listening socket and every open connection
(:meth:`FakeKubernetesAPI.set_down`), so clients get "connection refused" just as for
an unreachable API server; ``set_down(False)`` listens again on the *same* port, so
:attr:`FakeKubernetesAPI.url` and kubeconfigs built before stay valid.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.services import LoopbackHTTPServer

__all__ = ["FakeKubernetesAPI", "make_ca_and_cert"]

ROLES = ("admin", "limited")

# resource name -> (API group, kind, namespaced)
RESOURCES = {
    "namespaces": ("", "Namespace", False),
    "nodes": ("", "Node", False),
    "services": ("", "Service", True),
    "deployments": ("apps", "Deployment", True),
}

_MAX_SNAPSHOTS = 64  # continue tokens kept alive (per server)
_LAST = "\U0010ffff"


# --------------------------------------------------------------------------- TLS


def make_ca_and_cert(hostnames=("127.0.0.1", "localhost"), expired=False):
    """Return PEM bytes ``(ca_cert, server_cert, server_key)``; ``expired``: the server's
    certificate ran out yesterday (the CA's is valid).

    The CA is self-signed; the server certificate is signed by it and carries a
    SubjectAlternativeName entry for each of ``hostnames`` (IP addresses become
    ``IPAddress`` entries, anything else ``DNSName``).
    """
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=365)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubernetes-ca")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    sans = []
    for host in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))

    key = ec.generate_private_key(ec.SECP256R1())
    if expired:
        not_before, not_after = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return (
        ca_cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _server_ssl_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tmp = tempfile.mkdtemp(prefix="fake-kube-tls-")
    try:
        cert_path = os.path.join(tmp, "tls.crt")
        key_path = os.path.join(tmp, "tls.key")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        with open(key_path, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ctx


# ------------------------------------------------------------------- helpers


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    start = f"{key[0]}/{key[1]}" if key[0] else key[1]
    raw = _dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_continue(token: str, namespaced: bool) -> tuple[int, tuple[str, str]]:
    """Return ``(rv, last_key)``; raise ValueError for a malformed token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"continue key is not valid: {exc}") from exc
    if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
        raise ValueError("continue key is not valid: incorrect encoded start resourceVersion")
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or rv <= 0 or not isinstance(start, str):
        raise ValueError("continue key is not valid: incorrect encoded start resourceVersion")
    start = start.rstrip("\x00")
    if namespaced:
        ns, sep, name = start.partition("/")
        if not sep:
            raise ValueError("continue key is not valid: key does not include a namespace")
        return rv, (ns, name)
    return rv, ("", start)


class _Snapshot:
    """An immutable, sorted view of one resource type at one resourceVersion."""

    __slots__ = ("keys", "blobs")

    def __init__(self, keys: list, blobs: list):
        self.keys = keys  # sorted [(namespace, name)]
        self.blobs = blobs  # JSON bytes of each item, same order

    def bounds(self, namespace: str | None) -> tuple[int, int]:
        if namespace is None:
            return 0, len(self.keys)
        lo = bisect.bisect_left(self.keys, (namespace, ""))
        hi = bisect.bisect_left(self.keys, (namespace + "\x00", ""))
        return lo, hi


class _HTTPError(Exception):
    def __init__(self, status: dict):
        super().__init__(status["message"])
        self.status = status


# -------------------------------------------------------------------- server


class _Server(LoopbackHTTPServer):  # tests open 20 TLS connections at once
    allow_reuse_address = True

    def __init__(self, address, handler, api: FakeKubernetesAPI):
        self.api = api
        self.connections: set = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # Runs in the per-connection thread, so a slow or failing TLS handshake never
        # blocks the accept loop.
        request.settimeout(30)
        try:
            conn = self.api._ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            request.close()
            return
        with self.connections_lock:
            self.connections.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self.connections_lock:
                self.connections.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close_connections(self):
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            # The plain-socket shutdown, not SSLSocket.shutdown: it is safe to call
            # from another thread while the handler is blocked reading.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def handle_error(self, request, client_address):  # pragma: no cover - noise only
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeKubernetesAPI"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def do_GET(self):
        self._dispatch()

    def _not_allowed(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.close_connection = True
        self._dispatch()

    do_HEAD = do_GET
    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_allowed

    def _dispatch(self):
        api: FakeKubernetesAPI = self.server.api
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        api._record(self.command, parts.path, query)
        try:
            code, ctype, body = api._handle(
                self.command, parts.path, query, self.headers.get("Authorization")
            )
        except _HTTPError as err:
            code, ctype, body = err.status["code"], "application/json", _dumps(err.status)
        interval = api._trickle_interval(parts.path)
        if interval is not None and self.command == "GET":
            self._trickle(code, ctype, body, interval)
            return
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _trickle(self, code: int, ctype: str, body: bytes, interval: float) -> None:
        """The whole answer one byte every ``interval`` seconds, until it is sent or the client
        (or the server's stop) closes the connection."""
        self.close_connection = True
        head = (
            f"HTTP/1.1 {code} {self.responses[code][0]}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        for byte in head + body:
            try:
                self.wfile.write(bytes((byte,)))
            except (OSError, ssl.SSLError):
                return
            time.sleep(interval)


class FakeKubernetesAPI:
    """A fake Kubernetes API server on ``https://127.0.0.1:<random port>``.

    Public attributes: ``url``, ``port``, ``ca_pem``, ``tokens`` (token -> role),
    ``forbidden_resources``, ``requests`` (``(method, path, query_dict)`` tuples),
    ``cluster_uid`` (uid of ``kube-system``), ``git_version``.

    Mutate ``tokens``/``forbidden_resources`` through :meth:`set_token`,
    :meth:`revoke_token`, :meth:`forbid` and :meth:`allow` while the server runs.
    """

    def __init__(
        self,
        tokens: dict[str, str] | None = None,
        forbidden_resources=("deployments",),
        git_version: str = "v1.31.2",
        cluster_uid: str | None = None,
        tls: tuple[bytes, bytes, bytes] | None = None,
    ):
        self.ca_pem, cert_pem, key_pem = tls or make_ca_and_cert()
        self._ssl_context = _server_ssl_context(cert_pem, key_pem)
        self._lock = threading.RLock()
        self.tokens: dict[str, str] = {}
        for token, role in (tokens or {}).items():
            self.set_token(token, role)
        self.forbidden_resources: set[str] = set(forbidden_resources)
        self.requests: list[tuple[str, str, dict]] = []
        self.git_version = git_version
        self.cluster_uid = cluster_uid or str(uuid.uuid4())

        self._rv = 0
        # resource -> namespace ("" for cluster-scoped) -> name -> (uid, created, blob)
        self._store: dict[str, dict[str, dict[str, tuple[str, str, bytes]]]] = {
            r: {} for r in RESOURCES
        }
        self._changed_at = dict.fromkeys(RESOURCES, 0)  # resource -> rv of last change
        self._current: dict[str, tuple[int, _Snapshot]] = {}  # resource -> (built at, snap)
        self._snapshots: OrderedDict[tuple[str, int], _Snapshot] = OrderedDict()
        self._ip_counter = 0
        self._trickled: dict[str, float] = {}  # resource -> seconds between bytes of its lists

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self._down = False

        self._add_namespace("kube-system", uid=self.cluster_uid)
        self._add_namespace("default")

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeKubernetesAPI is not started")
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FakeKubernetesAPI:
        with self._lock:
            if self._server is None:
                self._listen(self.port or 0)
                self._down = False
        return self

    def stop(self) -> None:
        with self._lock:
            self._unlisten()
            self._down = False

    def __enter__(self) -> FakeKubernetesAPI:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def is_down(self) -> bool:
        return self._down

    def set_down(self, down: bool = True) -> None:
        """Simulate an unreachable API server (``True``) or bring it back (``False``).

        Going down closes the listening socket and every open (keep-alive) connection,
        so new requests get "connection refused".  Coming back listens again on the
        same port (SO_REUSEADDR), so ``url`` does not change.
        """
        with self._lock:
            if self.port is None:
                raise RuntimeError("FakeKubernetesAPI is not started")
            if down and not self._down:
                self._unlisten()
                self._down = True
            elif not down and self._down:
                self._listen(self.port)
                self._down = False

    def _listen(self, port: int) -> None:
        server = _Server(("127.0.0.1", port), _Handler, self)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-kube-api-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _unlisten(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(5)

    # --------------------------------------------------------------- tokens

    def set_token(self, token: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        with self._lock:
            self.tokens[token] = role

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)

    def forbid(self, *resources: str) -> None:
        """Add resource types (e.g. ``"services"``) that role "limited" may not read."""
        with self._lock:
            self.forbidden_resources.update(resources)

    def allow(self, *resources: str) -> None:
        with self._lock:
            self.forbidden_resources.difference_update(resources)

    def kubeconfig(self, token: str, context: str = "test", namespace: str | None = None):
        """A kubeconfig dict for ``kubernetes.config.new_client_from_config_dict``."""
        ctx = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": context,
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }

    def trickle(self, resource: str, interval: float | None = 0.5) -> None:
        """Answer the lists of ``resource`` (e.g. ``"services"``) one byte every ``interval``
        seconds; ``None`` answers them at once again."""
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}; expected one of {list(RESOURCES)}")
        with self._lock:
            if interval is None:
                self._trickled.pop(resource, None)
            else:
                self._trickled[resource] = interval

    def _trickle_interval(self, path: str) -> float | None:
        route = _route(path)
        if route is None or route[0] != "resource" or route[3] is not None:
            return None  # only lists trickle
        with self._lock:
            return self._trickled.get(route[1])

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, method: str, path: str, query: dict) -> None:
        with self._lock:
            self.requests.append((method, path, query))

    # ---------------------------------------------------------------- state

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def _put(self, resource: str, ns: str, name: str, build, uid: str | None = None) -> str:
        """Create or replace; ``build(uid, created, rv)`` returns the item dict."""
        with self._lock:
            self._rv += 1
            old = self._store[resource].get(ns, {}).get(name)
            uid, created = (old[0], old[1]) if old else (uid or str(uuid.uuid4()), _now())
            blob = _dumps(build(uid, created, str(self._rv)))
            self._store[resource].setdefault(ns, {})[name] = (uid, created, blob)
            self._changed_at[resource] = self._rv
            return uid

    def _delete(self, resource: str, ns: str, name: str) -> None:
        with self._lock:
            bucket = self._store[resource].get(ns)
            if bucket is None or name not in bucket:
                kind = resource if not ns else f"{ns}/{resource}"
                raise KeyError(f"{kind} {name!r} not found")
            self._rv += 1
            del bucket[name]
            if not bucket:
                del self._store[resource][ns]
            self._changed_at[resource] = self._rv

    def _add_namespace(self, name: str, uid: str | None = None) -> str:
        with self._lock:
            existing = self._store["namespaces"].get("", {}).get(name)
            if existing:
                return existing[0]

            def build(uid_, created, rv):
                return {
                    "metadata": {
                        "name": name,
                        "uid": uid_,
                        "resourceVersion": rv,
                        "creationTimestamp": created,
                        "labels": {"kubernetes.io/metadata.name": name},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }

            return self._put("namespaces", "", name, build, uid=uid)

    def add_namespace(self, name: str) -> str:
        """Create namespace ``name`` (no-op if it exists); return its uid."""
        return self._add_namespace(name)

    def remove_namespace(self, name: str) -> None:
        """Delete a namespace with its services and deployments (immediately)."""
        if name == "kube-system":
            raise ValueError("kube-system carries the cluster identity; keep it")
        with self._lock:
            self._delete("namespaces", "", name)
            for resource in ("services", "deployments"):
                if self._store[resource].pop(name, None) is not None:
                    self._changed_at[resource] = self._rv

    def add_service(
        self,
        ns: str,
        name: str,
        labels: dict | None = None,
        ports=(),
        type: str = "ClusterIP",  # noqa: A002 - mirrors the Kubernetes field name
        external_ip: str | None = None,
    ) -> str:
        """Create or replace a Service; return its uid.

        ``ports`` items are ints or dicts with ``port`` and optional ``name``,
        ``targetPort``, ``protocol``, ``nodePort``.  ``external_ip`` (an IP or a host
        name) is published in ``status.loadBalancer.ingress``.  The selector equals
        ``labels``.
        """
        labels = dict(labels or {})
        norm_ports = []
        for p in ports:
            p = {"port": p} if isinstance(p, int) else dict(p)
            port = int(p["port"])
            entry = {
                "name": p.get("name") or f"tcp-{port}",
                "protocol": p.get("protocol", "TCP"),
                "port": port,
                "targetPort": p.get("targetPort", port),
            }
            if type in ("NodePort", "LoadBalancer"):
                entry["nodePort"] = int(p.get("nodePort", 30000 + port % 2768))
            norm_ports.append(entry)
        ingress = []
        if external_ip:
            try:
                ipaddress.ip_address(external_ip)
                ingress.append({"ip": external_ip, "ipMode": "VIP"})
            except ValueError:
                ingress.append({"hostname": external_ip})

        with self._lock:
            self._add_namespace(ns)
            old = self._store["services"].get(ns, {}).get(name)
            if old:
                cluster_ip = json.loads(old[2])["spec"]["clusterIP"]
            else:
                self._ip_counter += 1
                n = self._ip_counter
                cluster_ip = f"10.96.{(n // 254) % 256}.{n % 254 + 1}"

            def build(uid, created, rv):
                spec = {
                    "ports": norm_ports,
                    "selector": labels,
                    "clusterIP": cluster_ip,
                    "clusterIPs": [cluster_ip],
                    "type": type,
                    "sessionAffinity": "None",
                    "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack",
                    "internalTrafficPolicy": "Cluster",
                }
                if type in ("NodePort", "LoadBalancer"):
                    spec["externalTrafficPolicy"] = "Cluster"
                if type == "LoadBalancer":
                    spec["allocateLoadBalancerNodePorts"] = True
                if not labels:
                    del spec["selector"]
                return {
                    "metadata": _meta(name, ns, uid, rv, created, labels),
                    "spec": spec,
                    "status": {"loadBalancer": {"ingress": ingress} if ingress else {}},
                }

            return self._put("services", ns, name, build)

    def remove_service(self, ns: str, name: str) -> None:
        self._delete("services", ns, name)

    def add_deployment(
        self,
        ns: str,
        name: str,
        labels: dict | None = None,
        image: str = "nginx:1.27",
        replicas: int = 1,
        ports=(),
    ) -> str:
        """Create or replace a Deployment (all replicas ready); return its uid.

        ``labels`` become the object labels, ``spec.selector.matchLabels`` and the pod
        template labels (``{"app": name}`` when empty).  ``ports`` are container ports.
        """
        labels = dict(labels or {"app": name})
        container = {
            "name": name,
            "image": image,
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
        if ports:
            container["ports"] = [
                {"containerPort": int(p), "protocol": "TCP"} if isinstance(p, int) else dict(p)
                for p in ports
            ]

        def build(uid, created, rv):
            meta = _meta(name, ns, uid, rv, created, labels)
            meta["generation"] = 1
            meta["annotations"] = {"deployment.kubernetes.io/revision": "1"}
            status = {"observedGeneration": 1}
            if replicas:
                status.update(
                    replicas=replicas,
                    updatedReplicas=replicas,
                    readyReplicas=replicas,
                    availableReplicas=replicas,
                )
            status["conditions"] = [
                {
                    "type": "Available",
                    "status": "True",
                    "lastUpdateTime": created,
                    "lastTransitionTime": created,
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": created,
                    "lastTransitionTime": created,
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{name}-5d8f7c9b6d" has successfully progressed.',
                },
            ]
            return {
                "metadata": meta,
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [container],
                            "restartPolicy": "Always",
                            "terminationGracePeriodSeconds": 30,
                            "dnsPolicy": "ClusterFirst",
                            "securityContext": {},
                            "schedulerName": "default-scheduler",
                        },
                    },
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                    },
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": 600,
                },
                "status": status,
            }

        with self._lock:
            self._add_namespace(ns)
            return self._put("deployments", ns, name, build)

    def remove_deployment(self, ns: str, name: str) -> None:
        self._delete("deployments", ns, name)

    def add_node(self, name: str, labels: dict | None = None) -> str:
        """Create or replace a Ready node whose kubelet runs ``git_version``."""
        node_labels = {
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            **(labels or {}),
        }

        def build(uid, created, rv):
            meta = _meta(name, None, uid, rv, created, node_labels)
            return {
                "metadata": meta,
                "spec": {},
                "status": {
                    "capacity": {"cpu": "4", "memory": "16384Mi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "16000Mi", "pods": "110"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "lastHeartbeatTime": created,
                            "lastTransitionTime": created,
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                        }
                    ],
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": name},
                    ],
                    "nodeInfo": {
                        "machineID": uid.replace("-", ""),
                        "systemUUID": uid,
                        "bootID": uid,
                        "kernelVersion": "6.1.0-fake",
                        "osImage": "Debian GNU/Linux 12 (bookworm)",
                        "containerRuntimeVersion": "containerd://1.7.22",
                        "kubeletVersion": self.git_version,
                        "kubeProxyVersion": self.git_version,
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                },
            }

        return self._put("nodes", "", name, build)

    def remove_node(self, name: str) -> None:
        self._delete("nodes", "", name)

    def expire_continue_tokens(self) -> None:
        """Forget list snapshots: outstanding continue tokens now get 410 Expired."""
        with self._lock:
            self._snapshots.clear()
            self._current.clear()

    # -------------------------------------------------------------- serving

    def _snapshot(self, resource: str) -> tuple[int, _Snapshot]:
        """The current snapshot of ``resource`` and the rv it is registered under."""
        with self._lock:
            rv = self._rv
            cached = self._current.get(resource)
            if cached is None or cached[0] < self._changed_at[resource]:
                keys, blobs = [], []
                store = self._store[resource]
                for ns in sorted(store):
                    bucket = store[ns]
                    for name in sorted(bucket):
                        keys.append((ns, name))
                        blobs.append(bucket[name][2])
                cached = (rv, _Snapshot(keys, blobs))
                self._current[resource] = cached
            snap = cached[1]
            self._snapshots[(resource, rv)] = snap
            self._snapshots.move_to_end((resource, rv))
            while len(self._snapshots) > _MAX_SNAPSHOTS:
                self._snapshots.popitem(last=False)
            return rv, snap

    def _authorize(self, authorization: str | None, verb: str, resource: str | None, **kw):
        with self._lock:
            role = None
            if authorization and authorization[:7].lower() == "bearer ":
                role = self.tokens.get(authorization[7:].strip())
            if role is None:
                raise _HTTPError(_status(401, "Unauthorized", "Unauthorized"))
            if resource is None or role == "admin" or resource not in self.forbidden_resources:
                return
        group = RESOURCES[resource][0]
        name, ns = kw.get("name"), kw.get("namespace")
        subject = f'{resource} "{name}"' if name else resource
        scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        message = (
            f'{subject} is forbidden: User "system:serviceaccount:default:{role}" cannot '
            f'{verb} resource "{resource}" in API group "{group}" {scope}'
        )
        details = {"name": name} if name else {}
        if group:
            details["group"] = group
        details["kind"] = resource
        raise _HTTPError(_status(403, "Forbidden", message, details))

    def _handle(self, method: str, path: str, query: dict, authorization: str | None):
        route = _route(path)
        resource = name = namespace = None
        if route is not None and route[0] != "nonresource":
            _, resource, namespace, name = route
        verb = "get" if name else "list"
        authz_ns = name if resource == "namespaces" else namespace
        self._authorize(authorization, verb, resource, name=name, namespace=authz_ns)
        if route is None:
            raise _HTTPError(
                _status(404, "NotFound", "the server could not find the requested resource")
            )
        if method not in ("GET", "HEAD"):
            raise _HTTPError(
                _status(
                    405,
                    "MethodNotAllowed",
                    f"the server does not allow this method ({method}) on the requested "
                    "resource (FakeKubernetesAPI is read-only)",
                )
            )
        if route[0] == "nonresource":
            return self._nonresource(route[1])
        if name is not None:
            return self._get(resource, namespace, name)
        return self._list(resource, namespace, query)

    def _nonresource(self, what: str):
        if what == "version":
            major, _, rest = self.git_version.lstrip("v").partition(".")
            minor = rest.partition(".")[0]
            body = {
                "major": major,
                "minor": minor,
                "gitVersion": self.git_version,
                "gitCommit": "5864a4677267e6adeae276ad85882a8714d69d9d",
                "gitTreeState": "clean",
                "buildDate": "2024-10-22T20:28:14Z",
                "goVersion": "go1.22.8",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
            return 200, "application/json", _dumps(body)
        return 200, "text/plain; charset=utf-8", b"ok"

    def _get(self, resource: str, namespace: str | None, name: str):
        group, kind, _ = RESOURCES[resource]
        with self._lock:
            item = self._store[resource].get(namespace or "", {}).get(name)
        if item is None:
            details = {"name": name}
            if group:
                details["group"] = group
            details["kind"] = resource
            raise _HTTPError(_status(404, "NotFound", f'{resource} "{name}" not found', details))
        api_version = f"{group}/v1" if group else "v1"
        head = f'{{"kind":"{kind}","apiVersion":"{api_version}",'.encode()
        return 200, "application/json", head + item[2][1:]

    def _list(self, resource: str, namespace: str | None, query: dict):
        group, kind, namespaced = RESOURCES[resource]
        if query.get("watch") in ("1", "true", "True"):
            raise _HTTPError(
                _status(400, "BadRequest", "watch is not supported by FakeKubernetesAPI")
            )
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise _HTTPError(
                _status(400, "BadRequest", f"invalid limit: {query['limit']!r}")
            ) from None
        token = query.get("continue")
        if token:
            try:
                rv, last = _decode_continue(token, namespaced)
            except ValueError as exc:
                raise _HTTPError(_status(400, "BadRequest", str(exc))) from None
            if namespace is not None and last[0] != namespace:
                raise _HTTPError(
                    _status(400, "BadRequest", "continue key is not valid: wrong namespace")
                )
            with self._lock:
                snap = self._snapshots.get((resource, rv))
                if snap is not None:
                    self._snapshots.move_to_end((resource, rv))
            if snap is None:
                raise _HTTPError(
                    _status(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue "
                        "parameter.",
                    )
                )
            lo, hi = snap.bounds(namespace)
            lo = max(lo, bisect.bisect_right(snap.keys, last, lo, hi))
        else:
            rv, snap = self._snapshot(resource)
            lo, hi = snap.bounds(namespace)

        end = hi if limit <= 0 else min(hi, lo + limit)
        meta = {"resourceVersion": str(rv)}
        if end < hi:
            meta["continue"] = _encode_continue(rv, snap.keys[end - 1])
            meta["remainingItemCount"] = hi - end
        api_version = f"{group}/v1" if group else "v1"
        head = {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta}
        body = b"".join((_dumps(head)[:-1], b',"items":[', b",".join(snap.blobs[lo:end]), b"]}"))
        return 200, "application/json", body


def _meta(name, ns, uid, rv, created, labels) -> dict:
    meta = {"name": name}
    if ns:
        meta["namespace"] = ns
    meta.update(uid=uid, resourceVersion=rv, creationTimestamp=created)
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _route(path: str):
    """``("nonresource", what)``, ``("resource", resource, namespace, name)`` or None."""
    if path in ("/version", "/version/"):
        return ("nonresource", "version")
    if path in ("/livez", "/readyz", "/healthz"):
        return ("nonresource", path[1:])
    if path.startswith("/api/v1/"):
        parts = path[len("/api/v1/") :].strip("/").split("/")
        allowed = {"namespaces", "nodes", "services"}
    elif path.startswith("/apis/apps/v1/"):
        parts = path[len("/apis/apps/v1/") :].strip("/").split("/")
        allowed = {"deployments"}
    else:
        return None
    if any(not p for p in parts):
        return None
    if len(parts) in (1, 2) and parts[0] in allowed:
        resource = parts[0]
        if len(parts) == 2 and RESOURCES[resource][2]:
            return None  # e.g. /api/v1/services/foo is not a real path
        return ("resource", resource, None, parts[1] if len(parts) == 2 else None)
    if parts[0] == "namespaces" and len(parts) in (3, 4) and parts[2] in allowed:
        resource = parts[2]
        if not RESOURCES[resource][2]:
            return None
        return ("resource", resource, parts[1], parts[3] if len(parts) == 4 else None)
    return None
