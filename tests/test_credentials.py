"""Secrets are encrypted at rest, never shown, and survive key rotation."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection as db

from credentials import crypto
from credentials.bounds import origin_of
from credentials.models import Credential

TOKEN = "tok-PLAINTEXT-4f9a1c77e2"


def raw_column(credential):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT secret_ciphertext FROM connections_credential WHERE id = %s", [credential.pk]
        )
        return cursor.fetchone()[0]


@pytest.fixture
def token_credential(owner):
    credential = Credential(name="ci-token", kind=Credential.Kind.BEARER_TOKEN, owner=owner)
    credential.set_secret({"token": TOKEN})
    credential.save()
    return credential


@pytest.mark.django_db
def test_the_stored_column_does_not_hold_the_plaintext(token_credential):
    stored = raw_column(token_credential)
    assert TOKEN not in stored
    assert Credential.objects.get(pk=token_credential.pk).get_secret() == {"token": TOKEN}
    assert TOKEN not in repr(token_credential) and TOKEN not in str(token_credential)


@pytest.mark.django_db
def test_secrets_survive_key_rotation(token_credential, settings):
    old_key = settings.CREDENTIAL_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = raw_column(token_credential)

    settings.CREDENTIAL_KEYS = [new_key, old_key]
    assert Credential.objects.get(pk=token_credential.pk).get_secret()["token"] == TOKEN
    call_command("rotate_credential_keys")
    after = raw_column(token_credential)
    assert after != before

    settings.CREDENTIAL_KEYS = [new_key]  # the old key is gone: still readable
    assert Credential.objects.get(pk=token_credential.pk).get_secret()["token"] == TOKEN
    settings.CREDENTIAL_KEYS = [old_key]
    with pytest.raises(crypto.InvalidToken):  # not readable with the old key alone
        Credential.objects.get(pk=token_credential.pk).get_secret()


@pytest.mark.django_db
def test_key_rotation_re_encrypts_notification_channels_too(owner, settings):
    """A channel's destination and signing secret are encrypted with the same keys: after the
    rotation the old key can be dropped and the channel still reads its settings."""
    from notifications import channels
    from notifications.models import Channel

    old_key = settings.CREDENTIAL_KEYS[0]
    channel, secret = channels.create_channel(
        owner, name="hook", kind="webhook", destination="http://127.0.0.1:9/hook"
    )
    before = Channel.objects.get(pk=channel.pk).config
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), old_key]
    call_command("rotate_credential_keys")
    settings.CREDENTIAL_KEYS = settings.CREDENTIAL_KEYS[:1]  # the old key dropped
    assert Channel.objects.get(pk=channel.pk).config == before


@pytest.mark.django_db
def test_rotation_in_batches_reports_what_no_key_reads_and_keeps_it(owner, settings):
    """Each batch is its own transaction; a secret made with a key no longer configured is
    named (model, field, id), left as it is, and the command exits 1: the rest is rotated."""
    old_key = settings.CREDENTIAL_KEYS[0]
    made = []
    for i in range(5):
        credential = Credential(name=f"c{i}", kind="bearer_token", owner=owner)
        credential.set_secret({"token": f"secret-{i}"})
        credential.save()
        made.append(credential)
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    stray = made[2]
    stray.set_secret({"token": "made-with-a-lost-key"})  # under a key soon forgotten
    stray.save()
    lost = raw_column(stray)
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [new_key, old_key]  # the stray's key is not among them
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("rotate_credential_keys", "--batch", "2", stderr=err, stdout=io.StringIO())
    assert exit_.value.code == 1
    assert f"credentials.Credential.secret_ciphertext id {stray.pk}" in err.getvalue()
    assert raw_column(stray) == lost  # left as it was, not emptied
    settings.CREDENTIAL_KEYS = [new_key]
    for i, credential in enumerate(made):
        if credential is not stray:
            assert Credential.objects.get(pk=credential.pk).get_secret()["token"] == f"secret-{i}"


@pytest.mark.django_db
def test_a_second_rotation_rewrites_nothing_and_a_token_put_back_meanwhile_is_named(
    token_credential, settings
):
    """Rows the primary key reads are left alone (a re-run finishes, it does not redo); a save
    that wrote an old key's token back after its batch is named at the end, exit 1."""
    old_key = settings.CREDENTIAL_KEYS[0]
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), old_key]
    out = io.StringIO()
    call_command("rotate_credential_keys", stdout=out)
    assert "1 credentials" in out.getvalue()
    rotated = raw_column(token_credential)
    out = io.StringIO()
    call_command("rotate_credential_keys", stdout=out)
    assert "0 credentials" in out.getvalue() and raw_column(token_credential) == rotated
    # a process still on the old setting writes the secret under the old key
    old_token = Fernet(old_key.encode()).encrypt(b'{"token": "x"}').decode()
    Credential.objects.filter(pk=token_credential.pk).update(secret_ciphertext=old_token)
    from credentials.management.commands import rotate_credential_keys as command

    real = command.crypto.primary_reads
    calls = []

    def put_back_after_its_batch(token):  # the save lands between the batch and the check
        calls.append(token)
        if len(calls) == 1:
            Credential.objects.filter(pk=token_credential.pk).update(secret_ciphertext=old_token)
            return True  # the batch saw a rotated row
        return real(token)

    command.crypto.primary_reads = put_back_after_its_batch
    err = io.StringIO()
    try:
        with pytest.raises(SystemExit):
            call_command("rotate_credential_keys", stdout=io.StringIO(), stderr=err)
    finally:
        command.crypto.primary_reads = real
    assert "still under an older key" in err.getvalue()
    assert f"credentials.Credential.secret_ciphertext id {token_credential.pk}" in err.getvalue()


@pytest.mark.django_db
def test_rotation_from_the_key_derived_from_secret_key(owner, settings):
    """A run without CREDENTIAL_KEYS encrypted with a key derived from SECRET_KEY: the first
    configured key takes those secrets over with --from-derived-key."""
    settings.CREDENTIAL_KEYS = []
    credential = Credential(name="dev", kind="bearer_token", owner=owner)
    credential.set_secret({"token": TOKEN})
    credential.save()
    with pytest.raises(CommandError, match="CREDENTIAL_KEYS is empty"):
        call_command("rotate_credential_keys")
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(SystemExit):  # without the flag: unreadable, reported
        call_command("rotate_credential_keys", stderr=io.StringIO(), stdout=io.StringIO())
    call_command("rotate_credential_keys", "--from-derived-key", stdout=io.StringIO())
    assert Credential.objects.get(pk=credential.pk).get_secret()["token"] == TOKEN


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "values", "message"),
    [
        ("bearer_token", {"token": "  "}, "needs a non-empty 'token'"),
        ("basic_auth", {"username": "u"}, "needs a non-empty 'password'"),
        ("kubeconfig", {"kubeconfig": "a: [1, 2"}, "not valid YAML at line"),
        ("kubeconfig", {"kubeconfig": "apiVersion: v1\nclusters: []\n"}, "has no contexts"),
        (
            "kubeconfig",
            {
                "kubeconfig": "contexts:\n- name: dev\n  context: {cluster: dev, user: me}\n"
                "clusters: []\nusers: []\n"
            },
            "refers to cluster 'dev'",
        ),
    ],
)
def test_bad_secrets_are_refused_with_a_clear_message(kind, values, message, owner):
    credential = Credential(name="x", kind=kind, owner=owner)
    with pytest.raises(ValidationError, match=message):
        credential.set_secret(values)


@pytest.mark.django_db
def test_a_refused_send_names_the_credential_but_not_its_other_endpoints(
    owner, make_connection, dead_url
):
    """Everyone who sees the connection reads its probe error: the credential's other
    endpoints are its owner's to see, on the credential's page."""
    from connections.models import Connection
    from connections.probing import outcomes as health
    from connections.probing.probes import probe_many

    credential = Credential(name="prod-token", kind=Credential.Kind.BEARER_TOKEN, owner=owner)
    credential.endpoints = ["https://private-a.example.org:9443", "https://private-b.example.org"]
    credential.set_secret({"token": TOKEN})
    credential.save()
    conn = make_connection("registered", url=dead_url, credential=credential, failure_threshold=1)
    (outcome,) = probe_many([conn])
    health.apply_outcomes([(conn, outcome)])
    error = Connection.all_objects.get(pk=conn.pk).last_probe_error
    assert "credential 'prod-token' is not sent to" in error
    assert "private-a" not in error and "private-b" not in error


def test_credential_bounds_are_those_it_was_saved_with():
    assert origin_of("http://127.0.0.1:1/x") == "http://127.0.0.1:1"


@pytest.mark.parametrize("token", ["abc\u2028def", "abc\u0085def", "abc\u200bdef"])
def test_a_token_with_an_invisible_separator_is_refused(token):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="control character"):
        Credential(kind="bearer_token").set_secret({"token": token})


def test_a_token_with_a_line_break_is_refused_and_never_echoed():
    credential = Credential(name="t", kind="bearer_token")
    with pytest.raises(ValidationError, match="control character") as refused:
        credential.set_secret({"token": "SEKRIT\nabc"})
    assert "SEKRIT" not in str(refused.value)
