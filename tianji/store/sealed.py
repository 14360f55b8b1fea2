"""Secrets at rest (management-api.md §0): values sealed with AES-256-GCM.

The key is the sha256 of `TIANJI_SALT_KEY`, else `LITELLM_SALT_KEY`, else the
master key: set a salt key before storing secrets if the master key may be
rotated, since a sealed value can only be opened with the key that sealed it.
A sealed value is text (`tianji-sealed:v1:` + base64 of nonce and ciphertext),
so it fits a JSON column; anything without the prefix is a plain value.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["PREFIX", "is_sealed", "seal", "sealing_key", "unseal"]

PREFIX = "tianji-sealed:v1:"
_NONCE_BYTES = 12


def sealing_key(master_key: str | None) -> bytes:
    """The 32-byte key; ValueError when there is nothing to derive it from."""
    secret = os.environ.get("TIANJI_SALT_KEY") or os.environ.get("LITELLM_SALT_KEY") or master_key
    if not secret:
        raise ValueError("no TIANJI_SALT_KEY, LITELLM_SALT_KEY or master key to seal secrets with")
    return hashlib.sha256(secret.encode()).digest()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(value: str, key: bytes) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), None)
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(value: str, key: bytes) -> str:
    """The plaintext of a sealed value (a plain value is returned as it is);
    ValueError when it was sealed with another key or altered."""
    if not is_sealed(value):
        return value
    raw = base64.b64decode(value[len(PREFIX) :])
    try:
        opened = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
    except InvalidTag:
        raise ValueError("sealed with another key (salt key or master key changed?)") from None
    return opened.decode()
