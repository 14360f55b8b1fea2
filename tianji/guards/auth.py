"""Authentication: the caller's key from the request headers to an Identity.

The master key lives in this module; virtual keys (tianji.guards.keys) plug in
behind the same :class:`Authenticator` protocol. The master key is compared in
constant time, and no error message ever echoes a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from tianji.compile.model import RoutePlan
from tianji.errors import AuthenticationFailed

__all__ = [
    "DEFAULT_KEY_HEADERS",
    "MASTER",
    "Anonymous",
    "Authenticator",
    "Identity",
    "MasterKey",
    "MasterKeyAuthenticator",
    "extract_key",
    "no_key",
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


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, resolved once per key (and cached with it).

    `role` is the user role of the key's user (`proxy_admin`, `proxy_admin_viewer`,
    `internal_user`, `internal_user_viewer`), `plain_key` for a key without a user,
    `anonymous` when no master key is configured. `roles` adds `team_admin` /
    `org_admin` when the user administers a team / an organization: RBAC allows a
    route when any of them may call it (tianji.guards.rbac)."""

    key_hash: str | None
    is_master: bool = False
    role: str = "proxy_admin"
    roles: frozenset[str] = frozenset()
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    key_alias: str | None = None
    key_type: str = "default"
    # Key allowed_routes: paths, `*` wildcards or route-group names; empty = no limit.
    allowed_routes: tuple[str, ...] = ()
    # Model allow-lists (guards.md §2); empty = no restriction at that level. The
    # user's list applies to personal keys only (keys without a team).
    models: tuple[str, ...] = ()
    team_models: tuple[str, ...] = ()
    user_models: tuple[str, ...] = ()
    org_models: tuple[str, ...] = ()
    # The key's user: team_id -> "admin" | "user"; organization_id -> user_role.
    team_roles: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    org_roles: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    expires: datetime | None = None

    def __post_init__(self) -> None:
        if not self.roles:
            object.__setattr__(self, "roles", frozenset({self.role}))

    @property
    def is_admin(self) -> bool:
        """Master key, a proxy_admin user's key, or an open gateway (no master key)."""
        return self.is_master or bool(self.roles & {"proxy_admin", "anonymous"})

    @property
    def reads_everything(self) -> bool:
        return self.is_admin or "proxy_admin_viewer" in self.roles

    @property
    def actor_name(self) -> str:
        """`changed_by` of the audit log when no litellm-changed-by header is sent."""
        return self.user_id or "tianji_proxy_admin"

    @property
    def actor_key(self) -> str:
        return "master_key" if self.is_master else (self.key_hash or "")

    def administers_team(self, team_id: str | None) -> bool:
        return team_id is not None and self.team_roles.get(team_id) == "admin"

    def administers_org(self, organization_id: str | None) -> bool:
        return organization_id is not None and self.org_roles.get(organization_id) == "org_admin"


Anonymous = Identity(key_hash=None, is_master=False, role="anonymous")
MASTER = Identity(key_hash=None, is_master=True, role="proxy_admin")


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
            key = _from_authorization(key)
        if key:
            return key
    return None


def _from_authorization(value: str) -> str:
    """`Bearer <k>` -> k; `Basic base64(user:<k>)` -> k (guards.md §1.1); else as sent."""
    scheme, _, credentials = value.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return value


class MasterKeyAuthenticator:
    """Master key only. With no master key configured the gateway is open (as LiteLLM);
    `tianji check` warns about that."""

    def __init__(self, master_key: str | None, header_names: tuple[str, ...]) -> None:
        self._master = MasterKey(master_key) if master_key else None
        self._names = header_names

    async def authenticate(
        self, headers: Iterable[tuple[str, str]], plan: RoutePlan | None = None
    ) -> Identity:
        if self._master is None:
            return Anonymous
        key = extract_key(headers, self._names)
        if key is None:
            raise no_key()
        if self._master.matches(key):
            return MASTER
        raise AuthenticationFailed("Invalid API key.", code="401")


class MasterKey:
    """Compared as sha256 digests with hmac.compare_digest: constant time, and the
    comparison does not depend on the key's length (guards.md §1.2)."""

    def __init__(self, master_key: str) -> None:
        self._digest = hashlib.sha256(master_key.encode()).digest()

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(hashlib.sha256(key.encode()).digest(), self._digest)


def no_key() -> AuthenticationFailed:
    return AuthenticationFailed(
        "Authentication Error, No api key passed in. Pass it as 'Authorization: Bearer <key>' "
        "or in 'x-api-key'.",
        code="401",
    )
