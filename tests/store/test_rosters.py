"""tianji.store.rosters and tianji.store.sealed on a real database (SQLite by
default, Postgres with TIANJI_TEST_DB=postgres)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tianji.store import Actor, Conflict, NotFound, Store
from tianji.store.people import join_team
from tianji.store.rosters import (
    change_team_member,
    delete_organizations,
    delete_teams,
    remove_team_member,
)
from tianji.store.sealed import is_sealed, seal, sealing_key, unseal

ACTOR = Actor(changed_by="admin-1", api_key="master_key")


async def _team_with(store: Store, team_id: str, members: dict[str, str]) -> None:
    await store.teams.insert({"team_id": team_id}, actor=ACTOR)
    for user_id, role in members.items():
        if await store.users.get(user_id) is None:
            await store.users.insert({"user_id": user_id}, actor=ACTOR)
        user = await store.users.require(user_id)
        await join_team(store, user, team_id, role=role, actor=ACTOR)


async def _roster(store: Store, team_id: str) -> list[tuple[str, str]]:
    team = await store.teams.require(team_id)
    return sorted((m["user_id"], m["role"]) for m in team["members_with_roles"])


async def test_concurrent_removals_lose_no_update(store: Store) -> None:
    members = {f"u{i}": "user" for i in range(12)} | {"boss": "admin"}
    await _team_with(store, "t1", members)
    await asyncio.gather(
        *(remove_team_member(store, "t1", f"u{i}", actor=ACTOR) for i in range(0, 12, 2))
    )
    expected = [("boss", "admin"), *sorted((f"u{i}", "user") for i in range(1, 12, 2))]
    assert await _roster(store, "t1") == expected
    rows = await store.team_members.of_group("t1")
    assert sorted((r["user_id"], r["role"]) for r in rows) == expected
    assert (await store.users.require("u0"))["teams"] == []


async def test_a_user_leaving_several_teams_at_once_keeps_a_true_list(store: Store) -> None:
    for team_id in "abcdefgh":
        await _team_with(store, team_id, {"u1": "user"})
    assert sorted((await store.users.require("u1"))["teams"]) == list("abcdefgh")
    await asyncio.gather(*(remove_team_member(store, t, "u1", actor=ACTOR) for t in "abcdefg"))
    assert (await store.users.require("u1"))["teams"] == ["h"]


async def test_the_last_admin_stays(store: Store) -> None:
    await _team_with(store, "t1", {"a1": "admin", "m1": "user"})
    with pytest.raises(Conflict, match="last admin"):
        await remove_team_member(store, "t1", "a1", actor=ACTOR)
    with pytest.raises(Conflict, match="last admin"):
        await change_team_member(store, "t1", "a1", {"role": "user"}, actor=ACTOR)
    promoted = await change_team_member(store, "t1", "m1", {"role": "admin"}, actor=ACTOR)
    assert promoted["role"] == "admin"
    await change_team_member(store, "t1", "a1", {"role": "user"}, actor=ACTOR)
    assert await _roster(store, "t1") == [("a1", "user"), ("m1", "admin")]
    with pytest.raises(NotFound):
        await remove_team_member(store, "t1", "nobody", actor=ACTOR)


async def test_delete_teams_takes_keys_and_memberships_along(store: Store) -> None:
    await _team_with(store, "t1", {"u1": "admin"})
    await _team_with(store, "t2", {"u1": "user"})
    key = {"token": "a" * 64, "key_name": "sk-...aaaa", "team_id": "t1", "user_id": "u1"}
    await store.keys.create(key, actor=ACTOR)
    with pytest.raises(NotFound):
        await delete_teams(store, ["t1", "ghost"], actor=ACTOR)
    assert await store.keys.exists("a" * 64)  # all or nothing
    await delete_teams(store, ["t1"], actor=ACTOR)
    assert not await store.keys.exists("a" * 64)
    assert await store.keys.deleted.find(token="a" * 64)  # kept as a deleted key
    assert (await store.users.require("u1"))["teams"] == ["t2"]
    assert await store.team_members.of_group("t1") == []


async def test_delete_organizations_cleans_budgets_but_not_shared_ones(store: Store) -> None:
    for budget_id in ("b-o1", "b-o2", "b-member", "shared"):
        await store.budgets.insert({"budget_id": budget_id}, actor=ACTOR)
    for org_id in ("o1", "o2"):
        row = {"organization_id": org_id, "organization_alias": org_id, "budget_id": f"b-{org_id}"}
        await store.organizations.insert(row, actor=ACTOR)
    await store.users.insert({"user_id": "u1"}, actor=ACTOR)
    await store.org_members.add("u1", "o1", role="internal_user", actor=ACTOR, budget_id="shared")
    await store.org_members.add("u1", "o2", role="internal_user", actor=ACTOR, budget_id="shared")
    await store.teams.insert({"team_id": "t2", "organization_id": "o2"}, actor=ACTOR)
    with pytest.raises(Conflict, match="t2"):
        await delete_organizations(store, ["o1", "o2"], actor=ACTOR)
    assert await store.organizations.exists("o1")
    await delete_organizations(store, ["o1"], actor=ACTOR)
    assert not await store.budgets.exists("b-o1")
    assert await store.budgets.exists("shared")  # o2's membership still uses it
    assert await store.org_members.of_user("u1") != []


def test_sealing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIANJI_SALT_KEY", raising=False)
    monkeypatch.delenv("LITELLM_SALT_KEY", raising=False)
    key = sealing_key("sk-master")
    sealed = seal("sk-lf-secret", key)
    assert is_sealed(sealed) and "secret" not in sealed
    assert seal("sk-lf-secret", key) != sealed  # a fresh nonce each time
    assert unseal(sealed, key) == "sk-lf-secret"
    assert unseal("plain", key) == "plain"
    with pytest.raises(ValueError, match="another key"):
        unseal(sealed, sealing_key("sk-other"))
    assert key == hashlib.sha256(b"sk-master").digest()
    # A salt key wins over the master key; TIANJI_SALT_KEY over LITELLM_SALT_KEY.
    monkeypatch.setenv("LITELLM_SALT_KEY", "salt")
    assert sealing_key("sk-master") == hashlib.sha256(b"salt").digest()
    monkeypatch.setenv("TIANJI_SALT_KEY", "tianji-salt")
    assert sealing_key("sk-master") == hashlib.sha256(b"tianji-salt").digest()
    monkeypatch.delenv("TIANJI_SALT_KEY")
    monkeypatch.delenv("LITELLM_SALT_KEY")
    with pytest.raises(ValueError):
        sealing_key(None)
