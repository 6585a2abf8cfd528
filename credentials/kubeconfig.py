"""Parse and check a stored kubeconfig: bounded against hostile YAML, silent about secrets.

(Over 400 lines, on purpose: one parser whose three steps share their bounds and their error
texts; split, each step would need the others' state to say where a problem is.)

A kubeconfig is pasted by a user and later handed to a Kubernetes client on the worker. The
text is read in three bounded steps so that no input can make parsing slow or large:

1. the YAML event stream is walked once, checking size, nesting depth, node count, anchors and
   duplicate keys, and recording the key path of every node (to say *where* a problem is);
2. the node graph is composed from those events and its size *with aliases expanded* is
   measured, memoised per node, so an alias bomb is refused before anything is built;
3. only then are Python objects constructed, and the kubeconfig rules checked on them.

No error message ever quotes the input: PyYAML's own texts are replaced by fixed descriptions,
and only entry names (which are not secrets) are echoed, cut to 100 characters.
"""

import bisect
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml
from django.core.exceptions import ValidationError
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import Mark, MarkedYAMLError
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
)
from yaml.nodes import Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from core.text import has_control_characters

MAX_KUBECONFIG_BYTES = 512 * 1024
MAX_KUBECONFIG_DEPTH = 32
# Nodes after alias expansion. A kubeconfig costs about 30 nodes per context (with its cluster
# and user), so this admits some 650 contexts and refuses any alias bomb long before it grows.
MAX_KUBECONFIG_NODES = 20_000
MAX_NAME_LENGTH = 100

# Commands (exec, auth-provider) would run on the worker, and file paths would read the
# worker's disk: neither belongs in a stored credential.
FORBIDDEN_USER_KEYS = ("exec", "auth-provider", "tokenFile", "client-certificate", "client-key")
FORBIDDEN_CLUSTER_KEYS = ("certificate-authority",)
# User values that are secrets: never echoed, trimmed, and refused with inner control characters.
SECRET_USER_KEYS = ("token", "username", "password")

# Keys of the kubeconfig schema. Only these are spelled out in a key path: any other key is
# shown as <key>, since a mis-indented secret can end up in a key position.
_KNOWN_KEYS = frozenset(
    (
        "apiVersion",
        "kind",
        "preferences",
        "colors",
        "clusters",
        "cluster",
        "users",
        "user",
        "contexts",
        "context",
        "current-context",
        "extensions",
        "extension",
        "name",
        "namespace",
        "server",
        "tls-server-name",
        "insecure-skip-tls-verify",
        "certificate-authority",
        "certificate-authority-data",
        "proxy-url",
        "disable-compression",
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "token",
        "tokenFile",
        "username",
        "password",
        "as",
        "as-uid",
        "as-groups",
        "as-user-extra",
        "auth-provider",
        "exec",
        "config",
        "command",
        "args",
        "env",
        "value",
        "installHint",
        "provideClusterInfo",
        "interactiveMode",
    )
)
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = Resolver()

# (pattern in PyYAML's problem text, pattern in its context text or "", what to say instead,
# whether the context mark (where the construct began) is the better place to point at).
_DESCRIPTIONS: tuple[tuple[str, str, str, bool], ...] = (
    ("unexpected end of stream", "quoted scalar", "an unclosed quoted string", True),
    ("unexpected document separator", "quoted scalar", "an unclosed quoted string", True),
    ("undefined alias", "", "an undefined alias", False),
    ("duplicate anchor", "", "an anchor defined twice", False),
    ("single document", "", "more than one YAML document", False),
    ("mapping values are not allowed", "", "a mapping value where none is allowed", False),
    ("sequence entries are not allowed", "", "a sequence entry where none is allowed", False),
    ("mapping keys are not allowed", "", "a mapping key where none is allowed", False),
    ("could not find expected ':'", "", "a key without a ':' after it", False),
    ("cannot start any token", "", "a character that cannot start any token", False),
    ("unknown escape character", "", "an unknown escape sequence in a quoted string", False),
    ("escape sequence of", "", "an incomplete escape sequence in a quoted string", False),
    ("", "anchor", "an invalid anchor name", False),
    ("", "alias", "an invalid alias name", False),
    ("", "tag", "an invalid tag", False),
    ("", "directive", "an invalid directive", False),
    ("", "block scalar", "an invalid block scalar header", True),
    ("document start", "", "content where a new document should start", False),
    ("incompatible YAML document", "", "an unsupported YAML version", False),
    ("duplicate", "", "a duplicate directive", False),
    ("undefined tag handle", "", "an undefined tag handle", False),
    ("expected the node content", "", "a missing value", False),
    ("expected <block end>", "", "an entry indented differently from its neighbours", False),
    ("expected ',' or ']'", "", "an unclosed or malformed flow sequence ('[')", True),
    ("expected ',' or '}'", "", "an unclosed or malformed flow mapping ('{')", True),
    ("unhashable key", "", "a key that is a list or a mapping", False),
    ("determine a constructor", "", "an unsupported tag", False),
    ("for merging", "", "a merge key ('<<') that does not merge mappings", False),
    ("base64", "", "invalid base64 data", False),
    ("recursive", "", "an alias inside the node it refers to", False),
    ("node, but found", "", "a value of the wrong kind for its tag", False),
    ("length 1", "", "an ordered mapping entry that is not a single pair", False),
    ("cannot be read as its type", "", "a value that cannot be read as its type", False),
)


def parse_kubeconfig(text: str, *, allow_insecure_tls: bool = False) -> dict[str, Any]:
    """The kubeconfig as a dict, once every bound and rule holds; else a ValidationError.

    Secrets (token, username, password) are trimmed in the returned document. A cluster that
    skips TLS verification is refused unless its credential's owner opted in with
    ``allow_insecure_tls``.
    """
    document = _load(text)
    if not isinstance(document, dict):
        raise ValidationError(
            "The kubeconfig must be a YAML mapping with clusters, users and contexts.",
            code="kubeconfig_shape",
        )
    clusters = _named(document, "clusters")
    users = _named(document, "users")
    contexts = _named(document, "contexts")
    if not contexts:
        raise ValidationError("The kubeconfig has no contexts.", code="kubeconfig_no_contexts")
    for path, name, user in users.values():
        _check_user(path, name, user)
    for path, name, cluster in clusters.values():
        _check_cluster(path, name, cluster, allow_insecure_tls=allow_insecure_tls)
    for path, name, context in contexts.values():
        _check_context(path, name, context, clusters, users)
    return document


def kubeconfig_servers(document: dict[str, Any]) -> list[str]:
    """The distinct server URLs the contexts use, in order of first use: what a probe reaches."""
    servers: list[str] = []
    for cluster in _used_clusters(document):
        server = cluster.get("server")
        if isinstance(server, str) and server not in servers:
            servers.append(server)
    return servers


def kubeconfig_insecure(document: dict[str, Any]) -> bool:
    """Whether any cluster a context uses skips TLS verification (to warn, or to refuse)."""
    return any(bool(c.get("insecure-skip-tls-verify")) for c in _used_clusters(document))


# ---------------------------------------------------------------- reading the YAML, bounded


@dataclass
class _Frame:
    """An open mapping or sequence in the event stream, and where its next node goes."""

    path: str
    mapping: bool
    anchor: str | None
    expecting_key: bool = True
    key: str = ""
    index: int = 0
    keys: set[str] = field(default_factory=set)


class _Walk:
    """Checks the event stream as it arrives and remembers each node's key path."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.stack: list[_Frame] = []
        self.anchors: set[str] = set()
        self.open_anchors: set[str] = set()
        self.documents = 0
        self.starts: list[int] = []
        self.paths: list[str] = []

    def feed(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _yaml_refusal("more than one YAML document", event.start_mark, "")
        elif isinstance(event, SequenceEndEvent | MappingEndEvent):
            frame = self.stack.pop()
            if frame.anchor is not None:
                self.open_anchors.discard(frame.anchor)
        elif isinstance(event, NodeEvent):
            self._node(event)

    def _node(self, event: NodeEvent) -> None:
        path = self._place(event)
        self.starts.append(event.start_mark.index)
        self.paths.append(path)
        if len(self.paths) > MAX_KUBECONFIG_NODES:
            raise _too_many_nodes(event.start_mark, path)
        anchor = event.anchor
        if isinstance(event, AliasEvent):
            if anchor not in self.anchors:
                raise _yaml_refusal("an undefined alias", event.start_mark, path)
            if anchor in self.open_anchors:
                raise _yaml_refusal("an alias inside the node it refers to", event.start_mark, path)
            return
        if anchor is not None:
            if anchor in self.anchors:
                raise _yaml_refusal("an anchor defined twice", event.start_mark, path)
            self.anchors.add(anchor)
        if isinstance(event, CollectionStartEvent):
            if len(self.stack) >= MAX_KUBECONFIG_DEPTH:
                raise _too_deep(event.start_mark, path)
            self.stack.append(_Frame(path, isinstance(event, MappingStartEvent), anchor))
            if anchor is not None:
                self.open_anchors.add(anchor)

    def _place(self, event: NodeEvent) -> str:
        """The key path of this node, moving its parent on to the next position."""
        if not self.stack:
            return ""
        top = self.stack[-1]
        if not top.mapping:
            top.index += 1
            return f"{top.path}[{top.index - 1}]"
        if not top.expecting_key:
            top.expecting_key = True
            return _join(top.path, top.key)
        top.expecting_key = False
        top.key = "<key>"
        if isinstance(event, ScalarEvent):
            if event.value in _KNOWN_KEYS:
                top.key = event.value
            if _is_string(event):
                if event.value in top.keys:
                    raise _yaml_refusal(
                        "a key that appears twice in the same mapping",
                        event.start_mark,
                        _join(top.path, top.key),
                    )
                top.keys.add(event.value)
        return _join(top.path, top.key)

    def where(self) -> str:
        """The key path of the position the parser had reached."""
        if not self.stack:
            return ""
        top = self.stack[-1]
        if not top.mapping:
            return f"{top.path}[{top.index}]"
        return _join(top.path, top.key) if not top.expecting_key else top.path

    def path_at(self, mark: Mark | None) -> str:
        """The key path of the last node that starts at or before this mark."""
        if mark is None:
            return ""
        position = bisect.bisect_right(self.starts, mark.index) - 1
        return self.paths[position] if position >= 0 else ""


class _NodeLoader(Composer, SafeConstructor, Resolver):
    """PyYAML's safe composer and constructor, fed with the events already walked and checked.

    The text is parsed once: the composer reads the events the walk recorded, so what was
    checked is exactly what is built.
    """

    def __init__(self, events: list[Event]) -> None:
        self._events = events
        self._position = 0
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def check_event(self, *choices: type) -> bool:
        if self._position >= len(self._events):
            return False
        return not choices or isinstance(self._events[self._position], choices)

    def peek_event(self) -> Event | None:
        return self._events[self._position] if self._position < len(self._events) else None

    def get_event(self) -> Event:
        self._position += 1
        return self._events[self._position - 1]

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """A type constructor's own error becomes a YAML error at the node, to say where.

        PyYAML's constructors raise plain Python errors that quote the value: ``0b_`` resolves
        to an int that int() refuses, ``!!bool maybe`` is a KeyError.
        """
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError):
            raise ConstructorError(
                None, None, "a value that cannot be read as its type", node.start_mark
            ) from None


def _load(text: str) -> Any:
    """The YAML document, read within the size, depth and node bounds."""
    if not isinstance(text, str):
        raise ValidationError("The kubeconfig must be text.", code="kubeconfig_shape")
    if len(text) > MAX_KUBECONFIG_BYTES or (
        len(text.encode("utf-8", "surrogatepass")) > MAX_KUBECONFIG_BYTES
    ):
        raise ValidationError(
            f"The kubeconfig is larger than {MAX_KUBECONFIG_BYTES // 1024} KiB "
            f"({MAX_KUBECONFIG_BYTES} bytes); is it a kubeconfig?",
            code="kubeconfig_too_large",
        )
    walk = _walk(text)
    loader = _NodeLoader(walk.events)
    failure = None
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        failure = _from_yaml_error(exc, text, walk.path_at(getattr(exc, "problem_mark", None)))
    if failure is not None:
        raise failure
    if node is None:
        return None
    _measure(node, walk)
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        failure = _from_yaml_error(exc, text, walk.path_at(getattr(exc, "problem_mark", None)))
    except RecursionError:
        failure = _yaml_refusal("a structure too deeply nested to read", None, "")
    except Exception:  # PyYAML's constructors raise what they like; none of it may surface
        failure = _yaml_refusal("a value that cannot be read as its type", None, "")
    # Raised here, outside the except clauses, so PyYAML's exception (whose text quotes the
    # input) is not chained to ours and cannot reach a traceback or a log.
    raise failure


def _walk(text: str) -> _Walk:
    """Parse the text once into checked events; stop at the first refusal."""
    walk = _Walk()
    events = yaml.parse(text, Loader=yaml.SafeLoader)
    try:
        while True:
            failure = None
            try:
                event = next(events)
            except StopIteration:
                return walk
            except yaml.YAMLError as exc:
                failure = _from_yaml_error(exc, text, walk.where())
            except RecursionError:
                failure = _yaml_refusal("a structure too deeply nested to read", None, walk.where())
            except Exception:  # hostile input must never surface PyYAML's internals
                failure = _yaml_refusal("a construct that cannot be read", None, walk.where())
            if failure is not None:
                raise failure
            walk.feed(event)
    finally:
        events.close()


def _measure(root: Node, walk: _Walk) -> None:
    """Refuse a graph whose aliases expand past the node budget or the depth limit.

    Each node's expanded size and height are computed once (memoised by identity), so a
    billion-laughs graph of a hundred nodes costs a hundred steps, and recursion stops at the
    depth limit, so it stays shallow.
    """
    memo: dict[int, tuple[int, int]] = {}

    def visit(node: Node, level: int) -> tuple[int, int]:
        known = memo.get(id(node))
        if known is None:
            if isinstance(node, ScalarNode):
                known = (1, 0)
            else:
                if level > MAX_KUBECONFIG_DEPTH:
                    raise _too_deep(node.start_mark, walk.path_at(node.start_mark))
                if isinstance(node, SequenceNode):
                    children = list(node.value)
                else:
                    children = [part for pair in node.value for part in pair]
                total, height = 1, 0
                for child in children:
                    size, child_height = visit(child, level + 1)
                    total += size
                    height = max(height, child_height)
                    if total > MAX_KUBECONFIG_NODES:
                        raise _aliases_too_large(node.start_mark, walk.path_at(node.start_mark))
                known = (total, height + 1)
                memo[id(node)] = known
        if level - 1 + known[1] > MAX_KUBECONFIG_DEPTH:
            raise _too_deep(node.start_mark, walk.path_at(node.start_mark))
        return known

    visit(root, 1)


def _is_string(event: ScalarEvent) -> bool:
    tag = event.tag
    if tag is None or tag == "!":
        tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)
    return tag == _STR_TAG


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _short(path: str) -> str:
    """A key path cut to its last 120 characters: the end says where, the start is context."""
    return path if len(path) <= 120 else "…" + path[-119:]


def _describe(exc: yaml.YAMLError, text: str) -> tuple[str, Mark | None]:
    """A fixed description of a PyYAML error, and where it is; never PyYAML's own words."""
    if not isinstance(exc, MarkedYAMLError):
        return "a character YAML does not allow, such as a control character", None
    problem, context = exc.problem or "", exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    for in_problem, in_context, description, at_context in _DESCRIPTIONS:
        if in_problem in problem and in_context in context:
            if at_context and exc.context_mark is not None:
                mark = exc.context_mark
            if description.startswith("a character that cannot") and _is_tab(text, mark):
                description = "a tab character (indent with spaces)"
            return description, mark
    return "a syntax error", mark


def _is_tab(text: str, mark: Mark | None) -> bool:
    return mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t"


def _from_yaml_error(exc: yaml.YAMLError, text: str, path: str) -> ValidationError:
    description, mark = _describe(exc, text)
    if mark is None and isinstance(exc, yaml.reader.ReaderError):
        position = min(max(exc.position, 0), len(text))
        line_start = text.rfind("\n", 0, position) + 1
        line = text.count("\n", 0, position)
        mark = Mark("", position, line, position - line_start, None, None)
        path = ""
    return _yaml_refusal(description, mark, path)


def _yaml_refusal(description: str, mark: Mark | None, path: str) -> ValidationError:
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    where += f" ({_short(path)})" if path else ""
    return ValidationError(
        f"The kubeconfig is not valid YAML{where}: {description}.", code="kubeconfig_yaml"
    )


def _located(mark: Mark | None, path: str) -> str:
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if path:
        where = f"{where}, {_short(path)}" if where else _short(path)
    return f" (at {where})" if where else ""


def _too_deep(mark: Mark | None, path: str) -> ValidationError:
    return ValidationError(
        f"The kubeconfig nests lists and mappings more than {MAX_KUBECONFIG_DEPTH} levels "
        f"deep{_located(mark, path)}; a kubeconfig needs far fewer.",
        code="kubeconfig_too_complex",
    )


def _too_many_nodes(mark: Mark | None, path: str) -> ValidationError:
    return ValidationError(
        f"The kubeconfig has more than {MAX_KUBECONFIG_NODES:,} YAML values"
        f"{_located(mark, path)}; split it into smaller kubeconfigs.",
        code="kubeconfig_too_complex",
    )


def _aliases_too_large(mark: Mark | None, path: str) -> ValidationError:
    return ValidationError(
        f"The kubeconfig's aliases expand to more than {MAX_KUBECONFIG_NODES:,} YAML values"
        f"{_located(mark, path)}; it is refused as a possible alias bomb.",
        code="kubeconfig_too_complex",
    )


# ---------------------------------------------------------------- the kubeconfig rules


def _show(name: Any) -> str:
    """A name fit for a message: names are not secrets, but they may be long or odd."""
    if not isinstance(name, str):
        return "(not a name)"
    shown = "".join("?" if has_control_characters(ch) else ch for ch in name)
    return shown if len(shown) <= MAX_NAME_LENGTH else shown[: MAX_NAME_LENGTH - 1] + "…"


def _named(document: dict[str, Any], section: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Entries of clusters/users/contexts by name: (inner path, name, inner mapping)."""
    entries = document.get(section) or []
    inner_key = section[:-1]
    if not isinstance(entries, list):
        raise ValidationError(f"'{section}' must be a list.", code="kubeconfig_shape")
    named: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for position, entry in enumerate(entries):
        path = f"{section}[{position}]"
        if not isinstance(entry, dict):
            raise ValidationError(f"Entry {path} must be a mapping.", code="kubeconfig_shape")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ValidationError(f"Entry {path} has no name.", code="kubeconfig_shape")
        if has_control_characters(name):
            raise ValidationError(
                f"Entry {path} has a control character in its name.", code="kubeconfig_shape"
            )
        inner = entry.get(inner_key, {})
        if not isinstance(inner, dict):
            raise ValidationError(
                f"'{_show(name)}' in '{section}' must hold a mapping under '{inner_key}' "
                f"({path}.{inner_key}).",
                code="kubeconfig_shape",
            )
        if name in named:
            raise ValidationError(
                f"Two entries of '{section}' are named '{_show(name)}' ({named[name][0]} and "
                f"{path}); a client could pick either, so names must be unique.",
                code="kubeconfig_duplicate_name",
            )
        named[name] = (f"{path}.{inner_key}", name, inner)
    return named


def _check_user(path: str, name: str, user: dict[str, Any]) -> None:
    for key in FORBIDDEN_USER_KEYS:
        if key in user:
            raise ValidationError(
                f"User '{_show(name)}' uses '{key}' ({path}.{key}), which is not accepted: "
                "store a token or client certificate data in the kubeconfig itself.",
                code="kubeconfig_forbidden",
            )
    for key in SECRET_USER_KEYS:
        value = user.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValidationError(
                f"User '{_show(name)}' has a '{key}' that is not text ({path}.{key}): "
                "put it in quotes.",
                code="kubeconfig_shape",
            )
        value = value.strip()
        if has_control_characters(value):
            raise ValidationError(
                f"User '{_show(name)}' has a line break or control character inside its "
                f"'{key}' ({path}.{key}).",
                code="kubeconfig_control_character",
            )
        user[key] = value


def _check_cluster(
    path: str, name: str, cluster: dict[str, Any], *, allow_insecure_tls: bool
) -> None:
    for key in FORBIDDEN_CLUSTER_KEYS:
        if key in cluster:
            raise ValidationError(
                f"Cluster '{_show(name)}' uses the file path '{key}' ({path}.{key}): use "
                f"'{key}-data' instead.",
                code="kubeconfig_forbidden",
            )
    if "proxy-url" in cluster:
        raise ValidationError(
            f"Cluster '{_show(name)}' sets 'proxy-url' ({path}.proxy-url), which is not "
            "accepted: a proxy would receive the credential. The kubeconfig must name the "
            "server directly.",
            code="kubeconfig_forbidden",
        )
    insecure = cluster.get("insecure-skip-tls-verify")
    if insecure is not None and not isinstance(insecure, bool):
        raise ValidationError(
            f"Cluster '{_show(name)}' has an 'insecure-skip-tls-verify' that is neither true nor "
            f"false ({path}.insecure-skip-tls-verify).",
            code="kubeconfig_shape",
        )
    if insecure and not allow_insecure_tls:
        raise ValidationError(
            f"Cluster '{_show(name)}' sets 'insecure-skip-tls-verify: true' "
            f"({path}.insecure-skip-tls-verify), so the server's certificate would not be "
            "checked and anyone in between could read the credential. It is accepted only if "
            "the credential's owner explicitly allows insecure TLS.",
            code="kubeconfig_insecure_tls",
        )
    server = cluster.get("server")
    if server is not None and server != "" and not _is_server_url(server):
        raise ValidationError(
            f"Cluster '{_show(name)}' has a server ({path}.server) that is not an https:// "
            "or http:// URL with a host.",
            code="kubeconfig_server_url",
        )


def _is_server_url(server: Any) -> bool:
    if not isinstance(server, str) or has_control_characters(server):
        return False
    if any(ch.isspace() for ch in server):
        return False
    try:
        parts = urlsplit(server)
        port = parts.port  # a port that is not a number in range raises ValueError
    except ValueError:
        return False
    return (
        parts.scheme.lower() in ("https", "http")
        and bool(parts.hostname)
        and (port is None or port > 0)
    )


def _check_context(
    path: str,
    name: str,
    context: dict[str, Any],
    clusters: dict[str, tuple[str, str, dict[str, Any]]],
    users: dict[str, tuple[str, str, dict[str, Any]]],
) -> None:
    cluster, user = context.get("cluster"), context.get("user")
    if not isinstance(cluster, str) or cluster not in clusters:
        target = f"cluster '{_show(cluster)}'" if isinstance(cluster, str) else "no cluster"
        raise ValidationError(
            f"Context '{_show(name)}' refers to {target} ({path}.cluster), which the file "
            "does not define.",
            code="kubeconfig_missing_cluster",
        )
    if user is not None and (not isinstance(user, str) or user not in users):
        target = f"user '{_show(user)}'" if isinstance(user, str) else "a user that is not a name"
        raise ValidationError(
            f"Context '{_show(name)}' refers to {target} ({path}.user), which the file "
            "does not define.",
            code="kubeconfig_missing_user",
        )
    server = clusters[cluster][2].get("server")
    if not isinstance(server, str) or not server:
        raise ValidationError(
            f"Cluster '{_show(cluster)}' (context '{_show(name)}') has no server URL "
            f"({clusters[cluster][0]}.server).",
            code="kubeconfig_no_server",
        )


def _used_clusters(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The cluster mappings the contexts refer to, each once, in order of first use."""
    clusters: dict[str, dict[str, Any]] = {}
    for entry in document.get("clusters") or []:
        if not isinstance(entry, dict):
            continue
        name, cluster = entry.get("name"), entry.get("cluster")
        if isinstance(name, str) and isinstance(cluster, dict):
            clusters.setdefault(name, cluster)
    used: list[dict[str, Any]] = []
    for entry in document.get("contexts") or []:
        context = entry.get("context") if isinstance(entry, dict) else None
        name = context.get("cluster") if isinstance(context, dict) else None
        cluster = clusters.get(name) if isinstance(name, str) else None
        if cluster is not None and not any(cluster is seen for seen in used):
            used.append(cluster)
    return used
