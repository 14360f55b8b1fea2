"""Virtual keys on the request path: who is calling (KeyAuthenticator) and which
models they may call (ModelAccessGuard). guards.md §1 and §2.

A key is looked up by its sha256 and kept in an in-process LRU (TTL
`general_settings.user_api_key_cache_ttl`, unknown hashes 5 s), so a cached key
costs no database round trip. Every committed write to a key, user, team or
organization evicts the entries it affects, on every instance when Redis is
configured (tianji.store.events). A load that started before an eviction is not
cached (the eviction may concern the rows it read).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from tianji.compile.model import ModelTable, RoutePlan
from tianji.errors import AuthenticationFailed, InvalidRequest
from tianji.guards.auth import MASTER, Identity, MasterKey, extract_key, no_key
from tianji.store import Change, KeyRecord, Store, hash_key, load_key_record

__all__ = [
    "MISS",
    "Admission",
    "IdentityCache",
    "KeyAuthenticator",
    "ModelAccessGuard",
    "admission_of",
]

_EVERY_MODEL = "all-proxy-models"
_TEAM_MODELS = "all-team-models"
_NO_DEFAULT_MODELS = "no-default-models"


@dataclass(frozen=True, slots=True)
class Admission:
    """A key's identity plus what can refuse it later without a reload."""

    identity: Identity
    expires_at: float | None  # epoch seconds
    revoke_at: float | None  # old hash of a regenerated key: valid until then
    blocked: str | None  # the 401 message when the key, user, team or org is blocked


def _blocked_message(record: KeyRecord) -> str | None:
    key, team, user, org = record.key, record.team, record.user, record.organization
    if key["blocked"]:
        return "Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin."
    if team is not None and team["blocked"]:
        return f"Team={team['team_id']} is blocked. Update via `/team/unblock` if you're admin."
    if user is not None and user["blocked"]:
        return f"Authentication Error, User={user['user_id']} is blocked"
    if org is not None and org["blocked"]:
        return f"Organization={org['organization_id']} is blocked."
    return None


def admission_of(record: KeyRecord) -> Admission:
    key, user, team, org = record.key, record.user, record.team, record.organization
    role = user["user_role"] if user is not None else "plain_key"
    roles = {role}
    if role != "plain_key":
        if "admin" in record.team_roles.values():
            roles.add("team_admin")
        if "org_admin" in record.org_roles.values():
            roles.add("org_admin")
    identity = Identity(
        key_hash=key["token"],
        role=role,
        roles=frozenset(roles),
        user_id=key["user_id"],
        team_id=key["team_id"],
        organization_id=key["organization_id"] or (team["organization_id"] if team else None),
        key_alias=key["key_alias"],
        key_type=key["key_type"],
        allowed_routes=tuple(key["allowed_routes"] or ()),
        models=tuple(key["models"] or ()),
        team_models=tuple(team["models"] or ()) if team is not None else (),
        user_models=tuple(user["models"] or ()) if user is not None and team is None else (),
        org_models=tuple(org["models"] or ()) if org is not None else (),
        team_roles=record.team_roles,
        org_roles=record.org_roles,
        metadata=key["metadata"] or {},
        expires=key["expires"],
    )
    expires = key["expires"]
    return Admission(
        identity=identity,
        expires_at=expires.timestamp() if expires is not None else None,
        revoke_at=record.revoke_at.timestamp() if record.revoke_at is not None else None,
        blocked=_blocked_message(record),
    )


# IdentityCache.get: not cached (or expired); None means "cached as unknown".
MISS = object()

# Change kind -> the Identity field whose value the change ids name.
_AFFECTS = {"user": "user_id", "team": "team_id", "organization": "organization_id"}


class IdentityCache:
    def __init__(self, ttl: float, *, negative_ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        # Bumped by every change: a load that saw an older epoch is not stored.
        self.epoch = 0
        self._entries: OrderedDict[str, tuple[float, Admission | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> Any:
        """The Admission, None (cached as unknown), or MISS."""
        entry = self._entries.get(token)
        if entry is None:
            return MISS
        deadline, admission = entry
        if now >= deadline:
            del self._entries[token]
            return MISS
        self._entries.move_to_end(token)
        return admission

    def put(self, token: str, admission: Admission | None, epoch: int, now: float) -> None:
        if epoch != self.epoch:
            return
        ttl = self.ttl if admission is not None else self.negative_ttl
        self._entries[token] = (now + ttl, admission)
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def on_change(self, change: Change) -> None:
        self.epoch += 1
        if change.kind == "*":
            self._entries.clear()
        elif change.kind == "key":
            self._evict(lambda token, a: token in change.ids or _field(a, "key_hash", change.ids))
        elif change.kind in _AFFECTS:
            name = _AFFECTS[change.kind]
            self._evict(lambda token, a: _field(a, name, change.ids))

    def _evict(self, matches: Any) -> None:
        doomed = [t for t, (_, a) in self._entries.items() if matches(t, a)]
        for token in doomed:
            del self._entries[token]


def _field(admission: Admission | None, name: str, ids: tuple[str, ...]) -> bool:
    return admission is not None and getattr(admission.identity, name) in ids


class KeyAuthenticator:
    """Master key (constant time) or a virtual key `sk-...` (guards.md §1)."""

    def __init__(
        self,
        store: Store,
        master_key: str | None,
        header_names: tuple[str, ...],
        *,
        cache_ttl: float = 60.0,
    ) -> None:
        self.store = store
        self._master = MasterKey(master_key) if master_key else None
        self._names = header_names
        self.cache = IdentityCache(cache_ttl)
        # token -> the one load in progress: concurrent misses share it (a cache
        # expiry under load would otherwise send every waiting request to the DB).
        self._loading: dict[str, asyncio.Task[Admission | None]] = {}
        store.bus.subscribe(self.cache.on_change)

    async def authenticate(
        self, headers: Iterable[tuple[str, str]], plan: RoutePlan | None = None
    ) -> Identity:
        key = extract_key(headers, self._names)
        if key is None:
            raise no_key()
        if self._master is not None and self._master.matches(key):
            return MASTER
        if not key.startswith("sk-"):
            # A 64-hex hash is never a credential; nothing but sk- keys is looked up.
            raise _invalid(None)
        token = hash_key(key)
        now = time.time()
        admission = self.cache.get(token, now)
        if admission is MISS:
            admission = await self._load(token, now)
        if admission is None:
            raise _invalid(key)
        return _admit(admission, key, now)

    async def _load(self, token: str, now: float) -> Admission | None:
        task = self._loading.get(token)
        if task is None:
            task = asyncio.ensure_future(self._fetch(token, now))
            self._loading[token] = task
            task.add_done_callback(lambda done: self._loaded(token, done))
        # Shielded: a caller that disconnects does not cancel the others' load.
        return await asyncio.shield(task)

    def _loaded(self, token: str, task: asyncio.Task[Admission | None]) -> None:
        self._loading.pop(token, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter went away

    async def _fetch(self, token: str, now: float) -> Admission | None:
        epoch = self.cache.epoch
        record = await load_key_record(self.store, token)
        admission = admission_of(record) if record is not None else None
        self.cache.put(token, admission, epoch, now)
        return admission


def _invalid(key: str | None) -> AuthenticationFailed:
    shown = f" Received API Key = sk-...{key[-4:]}" if key and len(key) > 8 else ""
    return AuthenticationFailed(
        f"Authentication Error, Invalid proxy server token passed.{shown}", code="401"
    )


def _admit(admission: Admission, key: str, now: float) -> Identity:
    if admission.revoke_at is not None and now >= admission.revoke_at:
        raise _invalid(key)
    if admission.blocked is not None:
        raise AuthenticationFailed(admission.blocked, code="401")
    if admission.expires_at is not None and now >= admission.expires_at:
        expires = admission.identity.expires
        raise InvalidRequest(
            f"Authentication Error - Expired Key. Key Expiry time {expires} and current time "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(now))}",
            type="expired_key",
            code="400",
        )
    return admission.identity


class ModelAccessGuard:
    """The `CallGuard` of virtual keys: the model group must be allowed by every
    non-empty list among key, team, user (personal keys) and organization; and a
    group served only by team-scoped deployments (`model_info.team_id`, added
    through /model/new) is for members of those teams (and admins) alone."""

    def __init__(self, models: ModelTable) -> None:
        self._providers: dict[str, frozenset[str]] = {}
        self._access_groups: dict[str, frozenset[str]] = {}
        for name, group in models.groups.items():
            self._providers[name] = frozenset(d.provider.name for d in group.deployments)
            self._access_groups[name] = frozenset(
                str(g) for d in group.deployments for g in d.model_info.get("access_groups") or ()
            )
        self._team_only: dict[str, frozenset[str]] = {}
        for name, group in models.groups.items():
            teams = [d.model_info.get("team_id") for d in group.deployments]
            if all(teams):
                self._team_only[name] = frozenset(str(t) for t in teams)
        self._memo: dict[tuple[tuple[str, ...], str, str | None], bool] = {}

    async def before_call(
        self,
        identity: Identity,
        plan: RoutePlan,
        model_group: str,
        requested: str | None = None,
    ) -> None:
        if identity.is_master or identity.role == "anonymous":
            return
        teams = self._team_only.get(model_group)
        if teams is not None and not self._in_team(identity, teams):
            raise AuthenticationFailed(
                f"team not allowed to access model. {model_group} belongs to another team.",
                type="team_model_access_denied",
                code="401",
                param="model",
            )
        key_models = identity.models
        if _TEAM_MODELS in key_models:
            key_models = identity.team_models
        checks = (
            ("key", key_models),
            ("team", identity.team_models),
            ("user", identity.user_models),
            ("org", identity.org_models),
        )
        for scope, entries in checks:
            if entries and not self.allows(entries, model_group, requested):
                raise _denied(scope, entries, requested or model_group)

    @staticmethod
    def _in_team(identity: Identity, teams: frozenset[str]) -> bool:
        if identity.reads_everything:
            return True
        return identity.team_id in teams or any(t in identity.team_roles for t in teams)

    def allows(self, entries: tuple[str, ...], group: str, requested: str | None = None) -> bool:
        memo_key = (entries, group, requested)
        found = self._memo.get(memo_key)
        if found is None:
            found = any(self._matches(entry, group, requested) for entry in entries)
            if len(self._memo) > 10_000:
                self._memo.clear()
            self._memo[memo_key] = found
        return found

    def _matches(self, entry: str, group: str, requested: str | None) -> bool:
        if entry == _EVERY_MODEL or entry in (group, requested):
            return True
        if entry == _NO_DEFAULT_MODELS:
            return False
        if "*" in entry:
            if fnmatchcase(group, entry) or (requested and fnmatchcase(requested, entry)):
                return True
            provider, _, rest = entry.partition("/")
            if rest == "*" and self._providers.get(group) == frozenset({provider}):
                return True
        return entry in self._access_groups.get(group, frozenset())


def _denied(scope: str, entries: tuple[str, ...], model: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"{scope} not allowed to access model. This {scope} can only access "
        f"models={list(entries)}. Tried to access {model}",
        type=f"{scope}_model_access_denied",
        code="401",
        param="model",
    )
