"""Liveness and readiness: readiness follows the database."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(30)


def test_readiness_follows_the_database(
    upstream: FakeUpstream, db_url: str, tmp_path: Path
) -> None:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gw:
        ready = httpx.get(gw.url + "/health/readiness")
        assert ready.status_code == 200
        assert ready.json()["db"] == "connected" and ready.json()["status"] == "healthy"
        assert httpx.get(gw.url + "/health/liveliness").json() == "I'm alive!"
        assert httpx.get(gw.url + "/health/liveness").json() == "I'm alive!"
        gw.call(gw.store.close)  # the database goes away
        down = httpx.get(gw.url + "/health/readiness")
        assert down.status_code == 503
        assert down.json()["db"] == "disconnected" and down.json()["status"] == "unhealthy"
        # Liveness is about the process, not its dependencies.
        assert httpx.get(gw.url + "/health/liveliness").status_code == 200
