"""Virtual-key authentication, the identity cache and model access (guards.md §1, §2)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, Gateway, keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.compile.model import ModelTable
from tianji.compile.pipeline import build
from tianji.errors import AuthenticationFailed, InvalidRequest, TianjiError
from tianji.guards.auth import DEFAULT_KEY_HEADERS, Anonymous, Identity
from tianji.guards.keys import MISS, Admission, IdentityCache, KeyAuthenticator, ModelAccessGuard
from tianji.store import Actor, Change, Store, hash_key, key_name, now

ACTOR = Actor()
PLAIN = "sk-" + "k" * 22


def _auth(store: Store) -> KeyAuthenticator:
    return KeyAuthenticator(store, MASTER_KEY, DEFAULT_KEY_HEADERS, cache_ttl=60)


def _bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


async def _key(store: Store, plaintext: str = PLAIN, **columns: Any) -> str:
    token = hash_key(plaintext)
    await store.keys.create(
        {"token": token, "key_name": key_name(plaintext), **columns}, actor=ACTOR
    )
    return token


async def _people(store: Store) -> None:
    """An org o1 with team t1; u-admin administers t1 and o1, u-member is a member."""
    await store.budgets.insert({"budget_id": "b1"}, actor=ACTOR)
    await store.organizations.insert(
        {"organization_id": "o1", "organization_alias": "O", "budget_id": "b1"}, actor=ACTOR
    )
    await store.teams.insert({"team_id": "t1", "organization_id": "o1"}, actor=ACTOR)
    for user in ("u-admin", "u-member"):
        await store.users.insert({"user_id": user}, actor=ACTOR)
    await store.team_members.add("u-admin", "t1", role="admin", actor=ACTOR)
    await store.team_members.add("u-member", "t1", role="user", actor=ACTOR)
    await store.org_members.add("u-admin", "o1", role="org_admin", actor=ACTOR)


# --------------------------------------------------------------------------- cache


def _admission(**identity: Any) -> Admission:
    return Admission(Identity(key_hash="h", role="internal_user", **identity), None, None, None)


def test_cache_ttl_negative_ttl_and_size() -> None:
    cache = IdentityCache(10, negative_ttl=1, max_entries=2)
    cache.put("a", _admission(), cache.epoch, now=100)
    cache.put("unknown", None, cache.epoch, now=100)
    assert isinstance(cache.get("a", 109.9), Admission)
    assert cache.get("unknown", 100.5) is None  # cached as unknown for 1 s
    assert cache.get("unknown", 101) is MISS
    assert cache.get("a", 110) is MISS
    for token in ("x", "y", "z"):
        cache.put(token, _admission(), cache.epoch, now=0)
    assert len(cache) == 2 and cache.get("x", 1) is MISS  # least recently used goes


@pytest.mark.parametrize(
    ("change", "evicted"),
    [
        (Change("key", ("t-a",)), {"t-a"}),
        (Change("key", ("h-b",)), {"t-b"}),  # by the active hash (a grace-period alias)
        (Change("user", ("u1",)), {"t-a", "t-b"}),
        (Change("team", ("team-2",)), {"t-b"}),
        (Change("organization", ("o1",)), {"t-a"}),
        (Change("budget", ("b1",)), set()),
        (Change("*"), {"t-a", "t-b", "t-none"}),
    ],
)
def test_cache_evicts_what_a_change_touches(change: Change, evicted: set[str]) -> None:
    cache = IdentityCache(60)
    a = Admission(Identity("h-a", user_id="u1", organization_id="o1"), None, None, None)
    b = Admission(Identity("h-b", user_id="u1", team_id="team-2"), None, None, None)
    for token, admission in (("t-a", a), ("t-b", b), ("t-none", None)):
        cache.put(token, admission, cache.epoch, now=0)
    cache.on_change(change)
    kept = {t for t in ("t-a", "t-b", "t-none") if cache.get(t, 1) is not MISS}
    assert {"t-a", "t-b", "t-none"} - kept == evicted


def test_a_load_that_raced_a_change_is_not_cached() -> None:
    cache = IdentityCache(60)
    epoch = cache.epoch
    cache.on_change(Change("key", ("t",)))  # the row changed while it was being read
    cache.put("t", _admission(), epoch, now=0)
    assert len(cache) == 0


# --------------------------------------------------------------------------- authentication


async def test_master_key_and_refusals(store: Store) -> None:
    auth = _auth(store)
    token = await _key(store)
    assert (await auth.authenticate(_bearer(MASTER_KEY))).is_master
    for headers in ([], _bearer("sk-nope-nope-nope-nope"), _bearer(token), _bearer("wrong")):
        with pytest.raises(AuthenticationFailed) as refused:
            await auth.authenticate(headers)
        assert "nope-nope" not in refused.value.message and token not in refused.value.message
    identity = await auth.authenticate([("x-api-key", PLAIN)])
    assert identity.key_hash == token and identity.role == "plain_key"


async def test_roles_come_from_the_user_and_memberships(store: Store) -> None:
    await _people(store)
    await _key(store, user_id="u-admin", team_id="t1")
    identity = await _auth(store).authenticate(_bearer(PLAIN))
    assert identity.roles == {"internal_user", "team_admin", "org_admin"}
    assert identity.organization_id == "o1" and identity.administers_team("t1")
    await _key(store, "sk-" + "m" * 22, user_id="u-member", team_id="t1")
    member = await _auth(store).authenticate(_bearer("sk-" + "m" * 22))
    assert member.roles == {"internal_user"} and not member.administers_team("t1")


@pytest.mark.parametrize(
    ("repository", "row_id", "message"),
    [
        ("keys", None, "Key is blocked"),
        ("teams", "t1", "Team=t1 is blocked"),
        ("users", "u-member", "User=u-member is blocked"),
        ("organizations", "o1", "Organization=o1 is blocked"),
    ],
)
async def test_blocked_key_team_user_or_org(
    store: Store, repository: str, row_id: str | None, message: str
) -> None:
    await _people(store)
    token = await _key(store, user_id="u-member", team_id="t1")
    auth = _auth(store)
    await auth.authenticate(_bearer(PLAIN))  # cached now
    await getattr(store, repository).update(row_id or token, {"blocked": True}, actor=ACTOR)
    with pytest.raises(AuthenticationFailed, match=message):
        await auth.authenticate(_bearer(PLAIN))
    await getattr(store, repository).update(row_id or token, {"blocked": False}, actor=ACTOR)
    assert (await auth.authenticate(_bearer(PLAIN))).key_hash == token


async def test_expired_key_is_400_expired_key(store: Store) -> None:
    await _key(store, expires=now() + timedelta(seconds=0.3))
    auth = _auth(store)
    await auth.authenticate(_bearer(PLAIN))
    await asyncio.sleep(0.35)  # expiry is checked on the cached entry too
    with pytest.raises(InvalidRequest) as expired:
        await auth.authenticate(_bearer(PLAIN))
    assert (expired.value.status, expired.value.type) == (400, "expired_key")


async def test_old_key_works_during_its_grace_period_only(store: Store) -> None:
    token = await _key(store)
    new_plain = "sk-" + "n" * 22
    await store.keys.rekey(
        token,
        hash_key(new_plain),
        key_name(new_plain),
        {},
        revoke_old_at=now() + timedelta(seconds=0.4),
        actor=ACTOR,
    )
    auth = _auth(store)
    assert (await auth.authenticate(_bearer(PLAIN))).key_hash == hash_key(new_plain)
    await asyncio.sleep(0.45)
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(_bearer(PLAIN))
    assert (await auth.authenticate(_bearer(new_plain))).key_hash == hash_key(new_plain)


async def test_a_cached_key_costs_no_query(store: Store) -> None:
    await _people(store)
    await _key(store, user_id="u-admin", team_id="t1")
    auth = _auth(store)
    before = store.query_count
    await auth.authenticate(_bearer(PLAIN))
    cold = store.query_count - before
    assert cold >= 4  # key, user, team, memberships, organization
    before = store.query_count
    for _ in range(200):
        await auth.authenticate(_bearer(PLAIN))
    assert store.query_count - before == 0


async def test_concurrent_misses_share_one_load(store: Store) -> None:
    """A cold (or just expired) key under load is loaded once, not once per request."""
    await _people(store)
    await _key(store, user_id="u-admin", team_id="t1")
    probe = _auth(store)
    before = store.query_count
    await probe.authenticate(_bearer(PLAIN))
    one_load = store.query_count - before
    auth = _auth(store)
    before = store.query_count
    identities = await asyncio.gather(*(auth.authenticate(_bearer(PLAIN)) for _ in range(32)))
    assert store.query_count - before == one_load
    assert {i.key_hash for i in identities} == {hash_key(PLAIN)}


async def test_database_down_is_503(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 't.db'}")
    await store.open()
    try:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        with pytest.raises(TianjiError) as down:
            await _auth(store).authenticate(_bearer(PLAIN))
        assert (down.value.status, down.value.type) == (503, "no_db_connection")
    finally:
        await store.close()


# --------------------------------------------------------------------------- model access

_MODELS = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_key: x}
    model_info: {access_groups: [cheap]}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: x}
  - model_name: claude-x
    litellm_params: {model: anthropic/claude-x, api_key: x}
    model_info: {access_groups: [cheap, premium]}
  - model_name: mixed
    litellm_params: {model: openai/gpt-4o, api_key: x}
  - model_name: mixed
    litellm_params: {model: anthropic/claude-x, api_key: x}
  - model_name: openai/*
    litellm_params: {model: openai/*, api_key: x}
general_settings: {master_key: sk-test-master}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelTable:
    config = tmp_path_factory.mktemp("models") / "config.yaml"
    config.write_text(_MODELS)
    built, problems = build(config, strict_env=False)
    assert built is not None, problems
    return built.gateway.models


_ALL = ("gpt-4o-mini", "gpt-4o", "claude-x", "mixed", "openai/*")


@pytest.mark.parametrize(
    ("lists", "allowed", "denied_by"),
    [
        ({"models": ("gpt-4o-mini",)}, {"gpt-4o-mini"}, "key"),
        ({"models": ("gpt-4o*",)}, {"gpt-4o-mini", "gpt-4o"}, "key"),
        ({"models": ("openai/*",)}, {"gpt-4o-mini", "gpt-4o", "openai/*"}, "key"),
        ({"models": ("cheap",)}, {"gpt-4o-mini", "claude-x"}, "key"),
        ({"models": ("all-proxy-models",)}, set(_ALL), "-"),
        ({}, set(_ALL), "-"),
        (
            {"models": ("gpt-4o-mini", "claude-x"), "team_models": ("gpt-4o", "gpt-4o-mini")},
            {"gpt-4o-mini"},
            {"claude-x": "team"},  # the key allows it, the team does not
        ),
        ({"models": ("all-team-models",), "team_models": ("premium",)}, {"claude-x"}, "key"),
        ({"team_models": ("gpt-4o",)}, {"gpt-4o"}, "team"),
        ({"user_models": ("no-default-models",)}, set(), "user"),
        ({"org_models": ("mixed", "claude-x")}, {"mixed", "claude-x"}, "org"),
    ],
)
async def test_model_access_matrix(
    models: ModelTable, lists: dict[str, Any], allowed: set[str], denied_by: Any
) -> None:
    """Every group is tried: allowed ones pass, the others are refused with 401 naming
    the first list (key, team, user, org) that refuses them."""
    guard = ModelAccessGuard(models)
    identity = Identity("h", role="internal_user", **lists)
    plan: Any = None
    for group in _ALL:
        if group in allowed:
            await guard.before_call(identity, plan, group)
            continue
        with pytest.raises(AuthenticationFailed) as denied:
            await guard.before_call(identity, plan, group)
        scope = denied_by.get(group, "key") if isinstance(denied_by, dict) else denied_by
        assert (denied.value.status, denied.value.type) == (401, f"{scope}_model_access_denied")
        assert f"Tried to access {group}" in denied.value.message


async def test_requested_name_on_a_wildcard_group(models: ModelTable) -> None:
    guard = ModelAccessGuard(models)
    identity = Identity("h", role="internal_user", models=("openai/gpt-4",))
    await guard.before_call(identity, None, "openai/*", requested="openai/gpt-4")  # type: ignore[arg-type]
    with pytest.raises(AuthenticationFailed, match="Tried to access openai/gpt-5"):
        await guard.before_call(identity, None, "openai/*", requested="openai/gpt-5")  # type: ignore[arg-type]
    for everyone in (Anonymous, Identity(None, is_master=True)):
        await guard.before_call(everyone, None, "claude-x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- through the gateway


def _chat(gw: Gateway, key: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
    )


def _generate(gw: Gateway, body: dict[str, Any]) -> str:
    response = httpx.post(
        gw.url + "/key/generate", json=body, headers={"authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


@pytest.fixture
def gw(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gateway:
        yield gateway


def test_team_and_key_lists_intersect_on_the_wire(gw: Gateway) -> None:
    gw.call(
        lambda: gw.store.teams.insert(
            {"team_id": "t1", "models": ["gpt-4o-mini", "openai/*"]}, actor=ACTOR
        )
    )
    key = _generate(gw, {"team_id": "t1", "models": ["gpt-4o-mini"]})
    assert _chat(gw, key).status_code == 200
    denied = _chat(gw, key, "openai/gpt-4.1")
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "key_model_access_denied"
    gw.call(lambda: gw.store.teams.update("t1", {"models": ["rerank-model"]}, actor=ACTOR))
    team_denied = _chat(gw, key).json()["error"]  # the team change evicted the cached key
    assert team_denied["type"] == "team_model_access_denied"


def test_cached_key_costs_no_database_round_trip(gw: Gateway, upstream: FakeUpstream) -> None:
    key = _generate(gw, {"models": ["gpt-4o-mini"]})
    before = gw.store.query_count
    assert _chat(gw, key).status_code == 200
    assert gw.store.query_count > before  # the first call loads the key
    before = gw.store.query_count
    with httpx.Client() as client:
        for _ in range(50):
            response = client.post(
                gw.v1 + "/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {key}"},
            )
            assert response.status_code == 200
    assert gw.store.query_count - before == 0
    assert len(upstream.requests) == 51


# --------------------------------------------------------------------------- two instances


def _pair(upstream: FakeUpstream, db_url: str, tmp_path: Path, general: str) -> Any:
    # A long TTL: only an invalidation can make B forget the key it cached.
    settings = "  user_api_key_cache_ttl: 600\n" + general
    config = keyed_config(upstream, db_url, general=settings.rstrip())
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    return running_gateway(config, a_dir), running_gateway(config, b_dir)


def test_a_key_blocked_on_one_instance_is_refused_on_the_other(
    upstream: FakeUpstream, db_url: str, redis_url: str, tmp_path: Path
) -> None:
    first, second = _pair(upstream, db_url, tmp_path, f"  redis_url: {redis_url}")
    with first as a, second as b:
        key = _generate(a, {})
        assert _chat(b, key).status_code == 200  # B caches the key
        block = httpx.post(
            a.url + "/key/block",
            json={"key": key},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        assert block.status_code == 200
        started = time.monotonic()
        refused = _chat(b, key)
        assert refused.status_code == 401, refused.text
        assert "blocked" in refused.json()["error"]["message"]
        assert time.monotonic() - started < 1
        httpx.post(
            a.url + "/key/unblock",
            json={"key": key},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        assert _chat(b, key).status_code == 200


def test_without_redis_the_other_instance_keeps_its_cache(
    upstream: FakeUpstream, db_url: str, tmp_path: Path
) -> None:
    """The control for the test above: B only learns of A's writes through Redis."""
    first, second = _pair(upstream, db_url, tmp_path, "")
    with first as a, second as b:
        key = _generate(a, {})
        assert _chat(b, key).status_code == 200
        httpx.post(
            a.url + "/key/block",
            json={"key": key},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        assert _chat(a, key).status_code == 401
        assert _chat(b, key).status_code == 200  # stale until its TTL: no channel
