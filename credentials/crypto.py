"""Secrets at rest: MultiFernet over the keys in ``settings.CREDENTIAL_KEYS``.

The first key encrypts; every key decrypts, so a new key can be put first and the old ones kept
until ``rotate`` has re-encrypted every secret. Without configured keys one key is derived from
SECRET_KEY (local runs only; a deploy check warns).
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ("InvalidToken", "decrypt", "encrypt", "rotate", "uses_derived_key")


def _derived_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"meshplay-credential-key:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    raw_keys = [key.encode() for key in keys] or [_derived_key(secret_key)]
    return MultiFernet([Fernet(key) for key in raw_keys])


def _current() -> MultiFernet:
    return _multifernet(tuple(settings.CREDENTIAL_KEYS), settings.SECRET_KEY)


def uses_derived_key() -> bool:
    return not settings.CREDENTIAL_KEYS


def encrypt(plaintext: bytes) -> str:
    return _current().encrypt(plaintext).decode()


def decrypt(token: str) -> bytes:
    return _current().decrypt(token.encode())


# Every column that holds a token of this module: (model, field), registered by the app that owns
# it in its apps.py, so that key rotation re-encrypts all of them.
_encrypted_columns: list[tuple[type, str]] = []


def holds_tokens(model: type, field: str) -> None:
    if (model, field) not in _encrypted_columns:
        _encrypted_columns.append((model, field))


def encrypted_columns() -> list[tuple[type, str]]:
    return list(_encrypted_columns)


def primary_reads(token: str) -> bool:
    """Whether the primary key alone decrypts ``token`` (rotation skips those, and checks at
    its end that every token is one)."""
    keys = settings.CREDENTIAL_KEYS
    primary = Fernet(keys[0].encode() if keys else _derived_key(settings.SECRET_KEY))
    try:
        primary.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str, with_derived_key: bool = False) -> str:
    """Re-encrypt a token under the primary key (it may have been made with an older one, or,
    ``with_derived_key``, with the key derived from SECRET_KEY of a run without keys)."""
    current = _current()
    if with_derived_key:
        keys = [key.encode() for key in settings.CREDENTIAL_KEYS]
        current = MultiFernet([Fernet(key) for key in [*keys, _derived_key(settings.SECRET_KEY)]])
    return current.rotate(token.encode()).decode()
