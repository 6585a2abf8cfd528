"""What the fuzz tests (test_fuzz_inputs.py) aim at, read from the project instead of listed by
hand, so that a new endpoint, form or field is fuzzed without anyone remembering to add it:
every operation of the OpenAPI schema, with its parameters and its request body (``$ref``
resolved), and every ``<form method="post">`` a page renders (parsed with html.parser)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator

from tests.url_patterns import Pattern, all_patterns

METHODS = ("get", "post", "put", "patch", "delete")


class Underivable(Exception):
    """A part of the schema or of a page the fuzz cannot draw values for; its message names it."""


# --- the OpenAPI schema -----------------------------------------------------------------------


@cache
def openapi_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def resolve_schema(node: Any, components: dict, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every ``$ref`` inlined and ``allOf`` merged; a recursive reference becomes
    ``{}`` (any JSON value)."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        name = ref.removeprefix("#/components/schemas/")
        if name == ref or name not in components:
            raise Underivable(f"a $ref the schema does not define: {ref}")
        if name in seen:
            return {}
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return {**resolve_schema(components[name], components, (*seen, name)), **rest}
    resolved: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            resolved[key] = {n: resolve_schema(v, components, seen) for n, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            resolved[key] = resolve_schema(value, components, seen)
        elif key in ("allOf", "oneOf", "anyOf"):
            resolved[key] = [resolve_schema(v, components, seen) for v in value]
        else:
            resolved[key] = value
    for part in resolved.pop("allOf", []):
        properties = {**part.get("properties", {}), **resolved.get("properties", {})}
        required = [*part.get("required", []), *resolved.get("required", [])]
        resolved = {**part, **resolved}
        if properties:
            resolved["properties"] = properties
        if required:
            resolved["required"] = required
    return resolved


@dataclass(frozen=True)
class ApiParameter:
    name: str
    location: str  # path, query, header or cookie
    schema: dict
    required: bool
    explode: bool  # an array as repeated ``name=value`` pairs
    resource: str  # for a path parameter: the path segment before it ("channels", "members")


@dataclass(frozen=True)
class ApiOperation:
    """One path x method of the schema, read lazily: ``parameters()`` and ``body()`` resolve
    their ``$ref``s and raise Underivable on what they cannot read."""

    method: str
    path: str  # the schema's spelling: /api/notifications/channels/{id}/test/
    raw: dict = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def parameters(self) -> list[ApiParameter]:
        components = openapi_schema().get("components", {}).get("schemas", {})
        found = []
        for parameter in self.raw.get("parameters", []):
            if "$ref" in parameter:
                raise Underivable(f"{self.name}: a parameter by $ref ({parameter['$ref']})")
            name, location = parameter["name"], parameter["in"]
            before = self.path.split("{" + name + "}", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            found.append(
                ApiParameter(
                    name=name,
                    location=location,
                    schema=resolve_schema(parameter.get("schema", {}), components),
                    required=bool(parameter.get("required")),
                    explode=parameter.get("explode", parameter.get("style", "form") == "form"),
                    resource=before if location == "path" else "",
                )
            )
        return found

    def body(self) -> tuple[str, dict] | None:
        """(content type, resolved schema) of the request body, JSON preferred; None if none."""
        content = self.raw.get("requestBody", {}).get("content", {})
        if not content:
            return None
        components = openapi_schema().get("components", {}).get("schemas", {})
        for content_type in ("application/json", *content):
            if content_type in content:
                if content_type != "application/json":
                    raise Underivable(f"{self.name}: a body of {content_type} only")
                schema = content[content_type].get("schema", {})
                return content_type, resolve_schema(schema, components)
        return None  # pragma: no cover (the loop always returns)


def api_operations() -> list[ApiOperation]:
    """Every path x method of the schema."""
    return [
        ApiOperation(method.upper(), path, item[method])
        for path, item in openapi_schema()["paths"].items()
        for method in METHODS
        if method in item
    ]


# --- the pages and their forms ----------------------------------------------------------------


@dataclass
class HtmlField:
    """A named control of a form (all the controls of that name together)."""

    name: str
    kind: str  # the input's type ("text", "checkbox", "datetime-local", …), select, textarea
    values: list[str] = field(default_factory=list)  # options, or what the page filled in
    suggested: list[str] = field(default_factory=list)  # a <datalist>'s options
    multiple: bool = False
    required: bool = False
    attrs: dict[str, str] = field(default_factory=dict)  # min, max, maxlength, pattern, …


@dataclass
class HtmlForm:
    page: str  # the URL of the page it is on
    action: str  # the path (and query) it posts to
    enctype: str
    fields: dict[str, HtmlField]
    action_field: str | None = None  # its action is this field's value (set by its onsubmit)

    @property
    def field_names(self) -> frozenset[str]:
        return frozenset(self.fields) - {"csrfmiddlewaretoken"}


_ACTION_FROM_FIELD = re.compile(r"this\.action\s*=\s*this\.elements\.(\w+)\.value")


class _FormParser(HTMLParser):
    """The ``<form>``s of a page, with their controls (also those outside the form that name it
    with ``form="…"``) and the ``<datalist>``s the inputs' ``list`` refers to."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self.controls: list[tuple[dict | None, dict]] = []  # (enclosing form, control)
        self.datalists: dict[str, list[str]] = {}
        self.links: list[str] = []
        self._form: dict | None = None
        self._select: dict | None = None
        self._option: dict | None = None
        self._textarea: dict | None = None
        self._datalist: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = {"attrs": a, "controls": []}
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button"):
            control = {"tag": tag, "attrs": a, "options": [], "text": []}
            self.controls.append((self._form, control))
            if tag == "select":
                self._select = control
            elif tag == "textarea":
                self._textarea = control
        elif tag == "datalist":
            self._datalist = self.datalists.setdefault(a.get("id", ""), [])
        elif tag == "option":
            self._option = {"attrs": a, "text": []}
            if self._select is not None:
                self._select["options"].append(self._option)
            elif self._datalist is not None and "value" in a:
                self._datalist.append(a["value"])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("select", "textarea", "option", "datalist"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = self._option = None
        elif tag == "option":
            self._option = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "datalist":
            self._datalist = None

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option["text"].append(data)
        elif self._textarea is not None:
            self._textarea["text"].append(data)


def _add_control(fields: dict[str, HtmlField], control: dict, datalists: dict) -> None:
    a = control["attrs"]
    name = a.get("name")
    if not name or "disabled" in a:
        return
    tag = control["tag"]
    if tag == "input":
        kind = (a.get("type") or "text").lower()
        if kind in ("reset", "button", "image"):
            return
        value = a.get("value", "on" if kind in ("checkbox", "radio") else "")
        values = [value]
    elif tag == "button":
        if (a.get("type") or "submit").lower() != "submit":
            return
        kind, values = "submit", [a.get("value", "")]
    elif tag == "select":
        kind = "select"
        values = [
            o["attrs"]["value"] if "value" in o["attrs"] else "".join(o["text"]).strip()
            for o in control["options"]
        ]
    else:
        kind, values = "textarea", ["".join(control["text"]).lstrip("\n")]
    known = fields.get(name)
    if known is None:
        known = fields[name] = HtmlField(name, kind, attrs=dict(a))
    known.values.extend(v for v in values if v not in known.values)
    known.required = known.required or "required" in a
    known.multiple = (
        known.multiple
        or "multiple" in a
        or (kind == "checkbox" and len(known.values) > 1)
        or (kind == "hidden" and known.kind == "hidden" and len(known.values) > 1)
    )
    if a.get("list") in datalists:
        known.suggested = datalists[a["list"]]


def _parse(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    by_id = {form["attrs"]["id"]: form for form in parser.forms if form["attrs"].get("id")}
    for enclosing, control in parser.controls:
        owner = by_id.get(control["attrs"]["form"]) if "form" in control["attrs"] else enclosing
        if owner is not None:
            owner["controls"].append(control)
    return parser


def _fields(form: dict, datalists: dict) -> dict[str, HtmlField]:
    fields: dict[str, HtmlField] = {}
    for control in form["controls"]:
        _add_control(fields, control, datalists)
    return fields


def forms_of(html: str, page: str) -> list[HtmlForm]:
    """The POST forms of a page's HTML; ``page`` is the URL it was fetched from."""
    parser = _parse(html)
    found = []
    for form in parser.forms:
        a = form["attrs"]
        if a.get("method", "get").lower() != "post":
            continue
        target = urlsplit(urljoin(page, a.get("action", "")))
        chosen = _ACTION_FROM_FIELD.search(a.get("onsubmit", ""))
        found.append(
            HtmlForm(
                page=page,
                action=target.path + (f"?{target.query}" if target.query else ""),
                enctype=a.get("enctype", "application/x-www-form-urlencoded"),
                fields=_fields(form, parser.datalists),
                action_field=chosen.group(1) if chosen else None,
            )
        )
    return found


def query_names_of(html: str, page: str) -> tuple[list[str], list[str]]:
    """The query parameters a page reads, as its GET forms and its links to itself spell them:
    (names, values seen)."""
    parser = _parse(html)
    names: set[str] = set()
    values: set[str] = set()
    for form in parser.forms:
        if form["attrs"].get("method", "get").lower() == "get":
            for name, control in _fields(form, parser.datalists).items():
                names.add(name)
                values.update(control.values)
    here = urlsplit(page).path
    for href in parser.links:
        link = urlsplit(urljoin(page, href))
        if link.path == here:
            for name, value in parse_qsl(link.query, keep_blank_values=True):
                names.add(name)
                values.add(value)
    return sorted(names), sorted(values)


def pattern_key(path: str) -> str | None:
    """The URL pattern's key (as tests/url_patterns.py spells it) a path resolves to."""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return None
    return match.view_name if match.url_name else "/" + match.route


# Not pages: the admin (Django's, behind staff sign-in; test_authz_matrix.py and test_admin.py
# sweep it), the JSON API (fuzzed from the schema instead) and its format-suffix twins.
NOT_PAGE_PREFIXES = ("admin/", "api/")


def page_patterns() -> list[Pattern]:
    """The URL patterns of the HTML pages (and of the endpoints their forms post to)."""
    return [
        p
        for p in all_patterns()
        if not p.route.startswith(NOT_PAGE_PREFIXES) and "format" not in p.parameters
    ]
