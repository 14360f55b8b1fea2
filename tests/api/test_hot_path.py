"""The hot path: with a database configured, master-key requests make no database
round trip at all (counted by the store itself), streamed or not."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.conftest import MASTER_KEY, keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(60)


def test_master_key_requests_cost_no_query(
    upstream: FakeUpstream, db_url: str, tmp_path: Path
) -> None:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)
        messages = [{"role": "user", "content": "ping"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # warm up
        before = gw.store.query_count
        for _ in range(25):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            list(
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
            )
        client.embeddings.create(model="gpt-4o-mini", input="x")
        assert gw.store.query_count == before
        assert len(upstream.requests) == 52
