"""parse_kubeconfig against hostile and malformed input: bounded, and silent about secrets."""

import time
import traceback
import tracemalloc

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from credentials.kubeconfig import (
    FORBIDDEN_USER_KEYS,
    MAX_KUBECONFIG_BYTES,
    kubeconfig_insecure,
    kubeconfig_servers,
    parse_kubeconfig,
)

CANARY = "CANARY-s3cr3t-0001"


def kubeconfig(
    *,
    server: str = "https://k8s.example.com:6443",
    cluster: str = "",
    user: str = "    token: t0ken\n",
    tail: str = "",
) -> str:
    """A one-context kubeconfig; ``cluster`` and ``user`` are extra lines of those mappings.

    The user's first line is line 9 of the text.
    """
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- name: prod\n"
        "  cluster:\n"
        f"    server: {server}\n"
        f"{cluster}"
        "users:\n"
        "- name: admin\n"
        "  user:\n"
        f"{user}"
        "contexts:\n"
        "- name: prod\n"
        "  context:\n"
        "    cluster: prod\n"
        "    user: admin\n"
        "current-context: prod\n"
        f"{tail}"
    )


def refusal(text: str, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        parse_kubeconfig(text, **kwargs)
    return refused.value


def test_a_valid_kubeconfig_parses():
    document = parse_kubeconfig(kubeconfig(cluster="    certificate-authority-data: QUJD\n"))
    assert document["users"] == [{"name": "admin", "user": {"token": "t0ken"}}]
    assert document["clusters"][0]["cluster"]["certificate-authority-data"] == "QUJD"
    assert kubeconfig_servers(document) == ["https://k8s.example.com:6443"]
    assert kubeconfig_insecure(document) is False


def test_servers_are_the_used_ones_distinct_in_order_of_first_use():
    text = """
clusters:
- {name: a, cluster: {server: 'https://a.example'}}
- {name: b, cluster: {server: 'https://b.example', insecure-skip-tls-verify: true}}
- {name: unused, cluster: {server: 'https://unused.example'}}
users: []
contexts:
- {name: one, context: {cluster: b}}
- {name: two, context: {cluster: a}}
- {name: three, context: {cluster: b}}
"""
    document = parse_kubeconfig(text, allow_insecure_tls=True)
    assert kubeconfig_servers(document) == ["https://b.example", "https://a.example"]
    assert kubeconfig_insecure(document) is True


@pytest.mark.parametrize("key", FORBIDDEN_USER_KEYS)
def test_each_forbidden_user_key_is_refused(key):
    refused = refusal(kubeconfig(user=f"    {key}: {CANARY}\n"))
    assert refused.code == "kubeconfig_forbidden"
    assert f"'{key}'" in refused.messages[0] and "users[0].user" in refused.messages[0]
    assert CANARY not in str(refused)


def test_a_certificate_authority_file_path_is_refused():
    refused = refusal(kubeconfig(cluster="    certificate-authority: /etc/ca.pem\n"))
    assert refused.code == "kubeconfig_forbidden"
    assert "certificate-authority-data" in refused.messages[0]


def test_a_proxy_is_refused_and_tls_server_name_is_not():
    refused = refusal(kubeconfig(cluster="    proxy-url: http://proxy.example:3128\n"))
    assert refused.code == "kubeconfig_forbidden"
    assert "a proxy would receive the credential" in refused.messages[0]
    assert "must name the server directly" in refused.messages[0]
    assert "proxy.example" not in str(refused)
    assert parse_kubeconfig(kubeconfig(cluster="    tls-server-name: k8s.internal\n"))


def test_skipping_tls_verification_needs_the_owners_opt_in():
    text = kubeconfig(cluster="    insecure-skip-tls-verify: true\n")
    refused = refusal(text)
    assert refused.code == "kubeconfig_insecure_tls"
    assert "explicitly allows insecure TLS" in refused.messages[0]
    document = parse_kubeconfig(text, allow_insecure_tls=True)
    assert kubeconfig_insecure(document) is True
    assert parse_kubeconfig(kubeconfig(cluster="    insecure-skip-tls-verify: false\n"))


def test_an_insecure_flag_that_is_not_a_boolean_is_refused():
    # The Python client treats any truthy value, even the string "false", as "skip".
    refused = refusal(kubeconfig(cluster="    insecure-skip-tls-verify: 'false'\n"))
    assert refused.code == "kubeconfig_shape"
    assert "clusters[0].cluster.insecure-skip-tls-verify" in refused.messages[0]


@pytest.mark.parametrize(
    "server",
    [
        "ftp://k8s.example.com",
        "file:///etc/passwd",
        "k8s.example.com:6443",
        "https://",
        "https:///api",
        "https://k8s.example.com:99999",
        "https://[::1",
        "'https://k8s.example.com /x'",
        "42",
    ],
)
def test_a_server_that_is_not_an_http_url_with_a_host_is_refused(server):
    refused = refusal(kubeconfig(server=server))
    assert refused.code == "kubeconfig_server_url"
    assert "clusters[0].cluster.server" in refused.messages[0]


@pytest.mark.parametrize(
    "server", ["http://10.0.0.1:8080", "https://[::1]:6443", "HTTPS://k8s.example.com/prefix"]
)
def test_http_and_https_servers_are_accepted(server):
    assert kubeconfig_servers(parse_kubeconfig(kubeconfig(server=server))) == [server]


def billion_laughs() -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_fast_and_small():
    text = billion_laughs()
    assert len(text.encode()) < 600
    tracemalloc.start()
    started = time.perf_counter()
    try:
        refused = refusal(text)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.code == "kubeconfig_too_complex"
    assert "alias" in refused.messages[0] and len(str(refused)) < 500
    assert elapsed < 2
    assert peak < 5 * 1024 * 1024


def test_an_alias_bomb_through_merge_keys_is_refused():
    lines = ["a: &a {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v}"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} {{<<: [{', '.join(['*' + previous] * 9)}]}}")
    refused = refusal("\n".join(lines))
    assert refused.code == "kubeconfig_too_complex"


def test_aliases_cannot_stack_nesting_past_the_depth_limit():
    lines = ["a0: &a0 " + "[" * 20 + "1" + "]" * 20]
    lines += [f"a{n}: &a{n} " + "[" * 20 + f"*a{n - 1}" + "]" * 20 for n in range(1, 5)]
    refused = refusal("\n".join(lines))
    assert refused.code == "kubeconfig_too_complex" and "32 levels" in refused.messages[0]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 100_000 + "}" * 100_000,
        "- " * 100_000 + "x\n",
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences"],
)
def test_nesting_100000_deep_is_refused_without_recursion(text):
    refused = refusal(text)
    assert refused.code == "kubeconfig_too_complex"
    assert "32 levels" in refused.messages[0] and len(str(refused)) < 500


def test_a_self_referencing_alias_is_refused():
    refused = refusal("a: &loop [1, *loop]\n")
    assert refused.code == "kubeconfig_yaml"


def test_an_undefined_alias_names_the_place_not_the_alias():
    refused = refusal(kubeconfig(user="    token: *Hunter2\n"))
    message = refused.messages[0]
    assert "Hunter2" not in str(refused)
    assert "line 9, column 12" in message
    assert "users[0].user.token" in message and "an undefined alias" in message


def test_an_unclosed_quote_points_at_where_it_opens():
    refused = refusal(kubeconfig(user=f'    token: "{CANARY}\n'))
    assert "line 9, column 12" in refused.messages[0]
    assert "an unclosed quoted string" in refused.messages[0]
    assert CANARY not in str(refused)


@pytest.mark.parametrize("value", ['"t0ken\\n"', '"  t0ken\\t "', "|\n      t0ken\n", "' t0ken '"])
def test_a_token_with_surrounding_whitespace_is_trimmed(value):
    document = parse_kubeconfig(kubeconfig(user=f"    token: {value}\n"))
    assert document["users"][0]["user"]["token"] == "t0ken"


@pytest.mark.parametrize("key", ["token", "username", "password"])
@pytest.mark.parametrize("inner", ["\\n", "\\r", "\\t", "\\x00", "\\x85", "\\u2028"])
def test_a_secret_with_an_inner_control_character_is_refused_unechoed(key, inner):
    refused = refusal(kubeconfig(user=f'    {key}: "{CANARY}{inner}{CANARY}"\n'))
    assert refused.code == "kubeconfig_control_character"
    assert f"users[0].user.{key}" in refused.messages[0]
    assert CANARY not in str(refused)


def test_a_secret_that_is_not_text_is_refused():
    refused = refusal(kubeconfig(user="    username: admin\n    password: 0123\n"))
    assert refused.code == "kubeconfig_shape"
    assert "users[0].user.password" in refused.messages[0] and "quotes" in refused.messages[0]
    assert "0123" not in str(refused) and "83" not in str(refused)


def test_an_oversized_kubeconfig_is_refused_counting_utf8_bytes():
    refused = refusal("a: " + "x" * MAX_KUBECONFIG_BYTES)
    assert refused.code == "kubeconfig_too_large" and "512 KiB" in refused.messages[0]
    two_byte_characters = "a: " + "é" * (MAX_KUBECONFIG_BYTES // 2)
    assert len(two_byte_characters) < MAX_KUBECONFIG_BYTES
    assert refusal(two_byte_characters).code == "kubeconfig_too_large"


def test_a_large_but_reasonable_kubeconfig_is_accepted():
    entries = range(300)
    text = (
        "clusters:\n"
        + "".join(
            f"- {{name: c{n}, cluster: {{server: 'https://c{n}.example'}}}}\n" for n in entries
        )
        + "users:\n"
        + "".join(f"- {{name: u{n}, user: {{token: t{n}}}}}\n" for n in entries)
        + "contexts:\n"
        + "".join(f"- {{name: x{n}, context: {{cluster: c{n}, user: u{n}}}}}\n" for n in entries)
    )
    assert len(kubeconfig_servers(parse_kubeconfig(text))) == 300


def test_too_many_values_are_refused():
    refused = refusal("[" + ", ".join(["1"] * 30_000) + "]")
    assert refused.code == "kubeconfig_too_complex" and "20,000" in refused.messages[0]


def test_two_entries_with_one_name_are_refused():
    # Otherwise the validator could check one entry and a client use the other.
    text = kubeconfig().replace(
        "contexts:", "- {name: admin, user: {exec: {command: sh}}}\ncontexts:"
    )
    refused = refusal(text)
    assert refused.code == "kubeconfig_duplicate_name"
    assert "users[0]" in refused.messages[0] and "users[1]" in refused.messages[0]


def test_a_key_given_twice_is_refused():
    refused = refusal(kubeconfig(user=f"    token: t0ken\n    'token': {CANARY}\n"))
    assert refused.code == "kubeconfig_yaml"
    assert "users[0].user.token" in refused.messages[0] and "twice" in refused.messages[0]
    assert CANARY not in str(refused)


def test_a_long_name_is_cut_in_messages():
    name = "n" * 500
    refused = refusal(f"contexts:\n- name: x\n  context: {{cluster: {name}}}\n")
    assert refused.code == "kubeconfig_missing_cluster"
    assert "n" * 99 in refused.messages[0] and "n" * 101 not in refused.messages[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [", "not valid YAML at line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("", "must be a YAML mapping"),
        ("contexts: []\n", "has no contexts"),
        ("contexts:\n- name: x\n  context: {cluster: nowhere}\n", "refers to cluster 'nowhere'"),
        ("contexts: [{name: x, context: abc}]", "must hold a mapping under 'context'"),
        ("clusters: [{name: [1]}]", "has no name"),
        ("users: {a: b}\ncontexts: [{name: x}]", "'users' must be a list"),
        (
            "clusters: [{name: c, cluster: {}}]\ncontexts: [{name: x, context: {cluster: c}}]",
            "has no server URL",
        ),
        (
            "clusters: [{name: c, cluster: {server: 'https://c'}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: me}}]",
            "refers to user 'me'",
        ),
    ],
)
def test_the_existing_rules_keep_their_messages(text, message):
    assert message in refusal(text).messages[0]


# Every document below fails, each in its own way, with the canary in a value position.
MALFORMED = {
    "undefined alias": kubeconfig(user=f"    token: *{CANARY}\n"),
    "unclosed quote": kubeconfig(user=f"    token: '{CANARY}\n"),
    "colon in a plain value": kubeconfig(user=f"    token: {CANARY}: x\n"),
    "unknown escape": kubeconfig(user=f'    password: "{CANARY}\\q"\n'),
    "control character": kubeconfig(user=f"    password: {CANARY}\x07\n"),
    "inner line break": kubeconfig(user=f'    token: "{CANARY}\\n{CANARY}"\n'),
    "tab indentation": kubeconfig(user=f"    token: {CANARY}\n\tusername: {CANARY}\n"),
    "bad int": kubeconfig(user=f"    token: !!int {CANARY}\n"),
    "bad base64": kubeconfig(user=f"    token: !!binary {CANARY}x\n"),
    "unknown tag": kubeconfig(user=f"    token: !{CANARY} x\n"),
    "bad timestamp": kubeconfig(user=f"    token: !!timestamp {CANARY}\n"),
    "duplicate key": kubeconfig(user=f"    token: {CANARY}\n    token: {CANARY}\n"),
    "two documents": kubeconfig(user=f"    token: {CANARY}\n", tail=f"---\ntoken: {CANARY}\n"),
    "not a mapping": f"- {CANARY}\n",
    "contexts not a list": f"contexts: {CANARY}\n",
    "server not a URL": kubeconfig(server=CANARY),
    "server with another scheme": kubeconfig(server=f"gopher://{CANARY}"),
    "proxy": kubeconfig(cluster=f"    proxy-url: http://{CANARY}@proxy\n"),
    "insecure not a boolean": kubeconfig(cluster=f"    insecure-skip-tls-verify: {CANARY}\n"),
    "exec": kubeconfig(user=f"    exec: {{command: {CANARY}}}\n"),
    "user reference not a name": kubeconfig().replace("user: admin", f"user: {{x: {CANARY}}}"),
    "unclosed flow mapping": kubeconfig(user=f"    token: {{a: {CANARY}\n"),
    "bad anchor": kubeconfig(user=f"    token: &{CANARY}! x\n"),
    "undefined tag handle": kubeconfig(user=f"    token: !h!{CANARY} x\n"),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_no_message_ever_contains_a_secret_value(text):
    refused = refusal(text)
    assert CANARY not in str(refused)
    assert all(CANARY not in message for message in refused.messages)
    # Nor does the traceback: PyYAML's exception (which quotes the input) is not chained.
    assert refused.__cause__ is None and refused.__context__ is None
    assert CANARY not in "".join(traceback.format_exception(refused))


def parses_or_refuses(text: str) -> None:
    try:
        assert isinstance(parse_kubeconfig(text), dict)
    except ValidationError as refused:
        assert refused.messages


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_any_text_parses_or_is_refused(text):
    parses_or_refuses(text)


YAMLISH = st.text(alphabet=":-[]{}&*!|>'\" \nabcxyz019", max_size=80)


@settings(max_examples=400, deadline=None, database=None)
@given(YAMLISH)
def test_yaml_like_text_parses_or_is_refused(text):
    parses_or_refuses(text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(YAMLISH, max_size=5))
def test_yaml_like_text_inside_a_kubeconfig_parses_or_is_refused(fragments):
    parses_or_refuses(kubeconfig(user="".join(f"    token: {f}\n" for f in fragments)))


@pytest.mark.parametrize(
    ("user_entry", "message"),
    [
        ({"exec": {"command": "/bin/sh", "args": ["-c", "touch /tmp/pwned"]}}, "uses 'exec'"),
        ({"tokenFile": "/etc/shadow"}, "uses 'tokenFile'"),
        ({"auth-provider": {"name": "gcp"}}, "uses 'auth-provider'"),
    ],
)
def test_kubeconfigs_that_run_commands_or_read_files_are_refused(user_entry, message):
    from credentials.secrets import parse_kubeconfig

    text = (
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        f"users: [{{name: u, user: {user_entry!r}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    ).replace("'", '"')
    with pytest.raises(ValidationError, match=message):
        parse_kubeconfig(text)


@pytest.mark.parametrize("text", ["contexts: [{name: x, context: abc}]", "clusters: [{name: [1]}]"])
def test_oddly_shaped_kubeconfigs_get_a_message_not_a_crash(text):
    from credentials.secrets import parse_kubeconfig

    with pytest.raises(ValidationError):
        parse_kubeconfig(text)
