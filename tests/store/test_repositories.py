"""The store on a real database (SQLite by default, Postgres with TIANJI_TEST_DB=postgres)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from piccolo.apps.migrations.tables import Migration

from tianji.errors import NotFound
from tianji.store import Actor, Change, Conflict, Store, hash_key, key_name, now, usd_to_nano
from tianji.store.migrate import apply_migrations, migration_ids, pending_migrations

ADMIN = Actor(changed_by="admin-1", api_key="master_key")


async def _org(store: Store, org_id: str = "o1") -> None:
    await store.budgets.insert({"budget_id": f"b-{org_id}"}, actor=ADMIN)
    await store.organizations.insert(
        {"organization_id": org_id, "organization_alias": org_id, "budget_id": f"b-{org_id}"},
        actor=ADMIN,
    )


async def test_migrations_are_recorded_once(store: Store) -> None:
    assert await pending_migrations() == []
    ran = await Migration.get_migrations_which_ran(app_name="tianji")
    assert sorted(ran) == migration_ids() and len(ran) == 2
    assert await apply_migrations(store.target) == []


async def test_insert_get_update_delete_with_audit(store: Store) -> None:
    created = await store.users.insert(
        {"user_id": "u1", "user_email": "Ada@Example.com", "max_budget": usd_to_nano(2.5)},
        actor=ADMIN,
    )
    assert created["max_budget"] == 2_500_000_000 and isinstance(created["max_budget"], int)
    assert created["models"] == [] and created["metadata"] == {}
    updated = await store.users.update("u1", {"models": ["gpt-4o"], "blocked": True}, actor=ADMIN)
    assert updated["models"] == ["gpt-4o"] and updated["blocked"] is True
    assert updated["updated_by"] == "admin-1"
    await store.users.delete(["u1"], actor=ADMIN)
    assert await store.users.get("u1") is None
    audit = (await store.audit.paginate(filters={"object_id": "u1"}, order_by="updated_at")).rows
    assert sorted(a["action"] for a in audit) == ["created", "deleted", "updated"]
    assert all(
        a["changed_by"] == "admin-1" and a["changed_by_api_key"] == "master_key" for a in audit
    )


async def test_duplicates_and_missing_rows(store: Store) -> None:
    await store.users.insert({"user_id": "u1", "user_email": "ada@example.com"}, actor=ADMIN)
    with pytest.raises(Conflict):
        await store.users.insert({"user_id": "u1"}, actor=ADMIN)
    with pytest.raises(Conflict):  # unique lower(user_email): a raw-migration index
        await store.users.insert({"user_id": "u2", "user_email": "ADA@example.com"}, actor=ADMIN)
    with pytest.raises(NotFound):
        await store.users.update("nobody", {"blocked": True}, actor=ADMIN)
    with pytest.raises(NotFound) as missing:
        await store.users.delete(["u1", "ghost"], actor=ADMIN)
    assert "ghost" in missing.value.message
    assert await store.users.get("u1") is not None  # all or nothing


async def test_a_budget_in_use_cannot_be_deleted(store: Store) -> None:
    await _org(store)
    with pytest.raises(Conflict):
        await store.budgets.delete(["b-o1"], actor=ADMIN)
    assert await store.budgets.exists("b-o1")


async def test_transaction_is_all_or_nothing_and_announces_after_commit(store: Store) -> None:
    heard: list[Change] = []
    store.bus.subscribe(heard.append)
    with pytest.raises(Conflict):
        async with store.transaction():
            await store.users.insert({"user_id": "u1"}, actor=ADMIN)
            assert heard == []  # not before the commit
            await store.users.insert({"user_id": "u1"}, actor=ADMIN)
    assert await store.users.get("u1") is None
    assert heard == []
    async with store.transaction():
        await store.users.insert({"user_id": "u2"}, actor=ADMIN)
        await store.teams.insert({"team_id": "t2"}, actor=ADMIN)
    assert heard == [Change("user", ("u2",)), Change("team", ("t2",))]


@pytest.mark.timeout(30)
async def test_concurrent_membership_adds_leave_one_row(store: Store) -> None:
    await _org(store)
    await store.users.insert({"user_id": "u1"}, actor=ADMIN)
    results = await asyncio.gather(
        *(store.org_members.add("u1", "o1", role="internal_user", actor=ADMIN) for _ in range(200)),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(conflicts) == 199, {type(r) for r in results}
    assert len(await store.org_members.of_group("o1")) == 1
    assert "already a member" in conflicts[0].message


async def test_memberships_need_their_user_and_group(store: Store) -> None:
    await _org(store)
    await store.users.insert({"user_id": "u1"}, actor=ADMIN)
    with pytest.raises(NotFound):
        await store.org_members.add("ghost", "o1", role="internal_user", actor=ADMIN)
    with pytest.raises(NotFound):
        await store.org_members.add("u1", "o-ghost", role="internal_user", actor=ADMIN)
    await store.teams.insert({"team_id": "t1", "organization_id": "o1"}, actor=ADMIN)
    await store.team_members.add("u1", "t1", role="admin", actor=ADMIN)
    assert [m["role"] for m in await store.team_members.of_user("u1")] == ["admin"]
    await store.users.delete(["u1"], actor=ADMIN)  # memberships cascade
    assert await store.team_members.of_group("t1") == []


async def test_key_lifecycle(store: Store) -> None:
    plaintext = "sk-" + "a" * 22
    token = hash_key(plaintext)
    row = {"token": token, "key_name": key_name(plaintext), "key_alias": "ci"}
    created = await store.keys.create(row, actor=ADMIN)
    assert created["key_name"] == "sk-...aaaa" and created["spend"] == 0
    with pytest.raises(Conflict):
        await store.keys.create({**row, "token": hash_key("sk-other-key-xxxxxxxxxxx")}, actor=ADMIN)
    with pytest.raises(NotFound):
        await store.keys.create(
            {**row, "token": "x" * 64, "key_alias": "b", "team_id": "t"}, actor=ADMIN
        )
    renewed = await store.keys.rekey(
        token, "n" * 64, "sk-...nnnn", {}, revoke_old_at=now() + timedelta(hours=1), actor=ADMIN
    )
    assert renewed["token"] == "n" * 64 and renewed["key_alias"] == "ci"
    assert (await store.keys.deprecated(token) or {})["active_token_id"] == "n" * 64
    await store.keys.delete_keys(["n" * 64], actor=ADMIN)
    assert await store.keys.get("n" * 64) is None
    assert await store.keys.deprecated(token) is None  # the grace hash dies with its key
    buried = await store.keys.deleted.find(key_alias="ci")
    assert sorted(r["token"] for r in buried) == sorted([token, "n" * 64])


async def test_paginate_filters_and_any_of(store: Store) -> None:
    for i in range(7):
        await store.keys.create({"token": f"{i:064d}", "key_name": f"k{i}"}, actor=ADMIN)
    page = await store.keys.search(filters={}, page=2, size=3, order_by="token", descending=False)
    assert [r["key_name"] for r in page.rows] == ["k3", "k4", "k5"] and page.total == 7
    only = await store.keys.search(
        filters={},
        any_of={"token": ["0" * 64], "key_alias": "none"},
        page=1,
        size=10,
        order_by="token",
        descending=True,
    )
    assert [r["key_name"] for r in only.rows] == ["k0"] and only.total == 1
