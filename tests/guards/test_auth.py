"""Key extraction and master-key auth."""

from __future__ import annotations

import asyncio

import pytest

from tianji.errors import AuthenticationFailed
from tianji.guards.auth import DEFAULT_KEY_HEADERS, MasterKeyAuthenticator, extract_key


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("authorization", "Bearer sk-1")], "sk-1"),
        ([("authorization", "bearer   sk-1 ")], "sk-1"),
        ([("x-api-key", "sk-2")], "sk-2"),
        ([("api-key", "sk-3")], "sk-3"),
        ([("x-goog-api-key", "sk-4")], "sk-4"),
        ([("ocp-apim-subscription-key", "sk-5")], "sk-5"),
        # Preference order: x-litellm-api-key first, even when it comes later.
        ([("authorization", "Bearer a"), ("x-litellm-api-key", "b")], "b"),
        ([("authorization", ""), ("x-api-key", "c")], "c"),
        ([("content-type", "application/json")], None),
    ],
)
def test_extract_key(headers: list[tuple[str, str]], expected: str | None) -> None:
    assert extract_key(headers, DEFAULT_KEY_HEADERS) == expected


def test_master_key() -> None:
    auth = MasterKeyAuthenticator("sk-master", DEFAULT_KEY_HEADERS)
    assert asyncio.run(auth.authenticate([("authorization", "Bearer sk-master")])).is_master
    with pytest.raises(AuthenticationFailed) as info:
        asyncio.run(auth.authenticate([("authorization", "Bearer sk-maste")]))
    assert "sk-maste" not in info.value.message
    with pytest.raises(AuthenticationFailed):
        asyncio.run(auth.authenticate([]))


def test_custom_header_name() -> None:
    auth = MasterKeyAuthenticator("sk-master", ("x-my-key", *DEFAULT_KEY_HEADERS))
    assert asyncio.run(auth.authenticate([("x-my-key", "sk-master")])).is_master


def test_no_master_key_means_open() -> None:
    identity = asyncio.run(MasterKeyAuthenticator(None, DEFAULT_KEY_HEADERS).authenticate([]))
    assert identity.role == "anonymous" and not identity.is_master
