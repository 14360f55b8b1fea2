"""Persistence: the only package that speaks SQL (Piccolo; SQLite or Postgres).

    store = Store(general_settings.database_url, redis_url=general_settings.redis_url)
    await store.open()                # bind, migrate, pool, change bus (app startup)
    team = await store.teams.require("t1")                      # 404 if absent
    await store.teams.update("t1", {"blocked": True}, actor=actor)  # audited, announced
    async with store.transaction():   # several writes, all or nothing
        ...

Repositories on a Store (rows are dicts of stored values; money in nano-USD):
`keys`, `users`, `teams`, `organizations`, `team_members`, `org_members`,
`budgets`, `customers` (end users), `tags`, `models` (proxy models),
`spend_logs`, `daily_spend`, `managed_objects`, `audit`.
"""

from tianji.store.engine import Target, parse_database_url
from tianji.store.errors import Conflict, NotFound, Unavailable
from tianji.store.events import Change, ChangeBus
from tianji.store.identity import KeyRecord, load_key_record
from tianji.store.keys import hash_key, key_name, token_of
from tianji.store.money import NANO_PER_USD, nano_to_usd, usd_to_nano
from tianji.store.repo import Actor, Page, Row, now
from tianji.store.store import Store

__all__ = [
    "NANO_PER_USD",
    "Actor",
    "Change",
    "ChangeBus",
    "Conflict",
    "KeyRecord",
    "NotFound",
    "Page",
    "Row",
    "Store",
    "Target",
    "Unavailable",
    "hash_key",
    "key_name",
    "load_key_record",
    "nano_to_usd",
    "now",
    "parse_database_url",
    "token_of",
    "usd_to_nano",
]
