"""Authentication: the caller's key from the request headers to an Identity.

Only the master key exists in this module; virtual keys plug in behind the
same :class:`Authenticator` protocol. The master key is compared in constant
time, and no error message ever echoes a key.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tianji.compile.model import RoutePlan
from tianji.errors import AuthenticationFailed

__all__ = [
    "DEFAULT_KEY_HEADERS",
    "Anonymous",
    "Authenticator",
    "Identity",
    "MasterKeyAuthenticator",
    "extract_key",
]

# Header names (lower case) a key may arrive in, in order of preference.
DEFAULT_KEY_HEADERS = (
    "x-litellm-api-key",
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
)


@dataclass(frozen=True, slots=True)
class Identity:
    key_hash: str | None
    is_master: bool = False
    role: str = "proxy_admin"


Anonymous = Identity(key_hash=None, is_master=False, role="anonymous")
_MASTER = Identity(key_hash=None, is_master=True, role="proxy_admin")


class Authenticator(Protocol):
    async def authenticate(
        self, headers: Iterable[tuple[str, str]], plan: RoutePlan | None = None
    ) -> Identity: ...


def extract_key(headers: Iterable[tuple[str, str]], names: tuple[str, ...]) -> str | None:
    """The first key found, by header preference; `Bearer ` is stripped from Authorization."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name in names and name not in found:
            found[name] = value
    for name in names:
        raw = found.get(name)
        if not raw:
            continue
        key = raw.strip()
        if name == "authorization":
            scheme, _, token = key.partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else key
        if key:
            return key
    return None


class MasterKeyAuthenticator:
    """Master key only. With no master key configured the gateway is open (as LiteLLM);
    `tianji check` warns about that."""

    def __init__(self, master_key: str | None, header_names: tuple[str, ...]) -> None:
        self._master = master_key.encode() if master_key else None
        self._names = header_names

    async def authenticate(
        self, headers: Iterable[tuple[str, str]], plan: RoutePlan | None = None
    ) -> Identity:
        if self._master is None:
            return Anonymous
        key = extract_key(headers, self._names)
        if key is None:
            raise AuthenticationFailed(
                "No API key provided. Pass it as 'Authorization: Bearer <key>' or in 'x-api-key'.",
                code="401",
            )
        if hmac.compare_digest(key.encode(), self._master):
            return _MASTER
        raise AuthenticationFailed("Invalid API key.", code="401")
