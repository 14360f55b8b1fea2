"""What the user, customer and budget tests share: a keyed gateway on a fresh
database, driven over real HTTP with the master key or a user's key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import MASTER_KEY, Gateway, keyed_config, running_gateway
from tests.support.fake_upstream import FakeUpstream

__all__ = ["Api", "admin_api", "envelope"]


class Api:
    """HTTP calls to one gateway, as the master key unless `key=` says otherwise."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.client = httpx.Client(base_url=gateway.url, timeout=10)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        key: str = MASTER_KEY,
    ) -> httpx.Response:
        return self.client.request(
            method, path, json=body, params=params, headers={"Authorization": f"Bearer {key}"}
        )

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.call(method, path, body, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def user_key(self, user_id: str, role: str = "internal_user", **fields: Any) -> str:
        """Create a user with a role; returns the plaintext of their auto-created key."""
        body = {"user_id": user_id, "user_role": role, **fields}
        key: str = self.ok("POST", "/user/new", body)["key"]
        return key


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenAI error envelope, with `code` = the status (management-api.md §0)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == str(status)
    return error


@contextmanager
def admin_api(upstream: FakeUpstream, db_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_gateway(keyed_config(upstream, db_url), tmp_path) as gateway:
        api = Api(gateway)
        try:
            yield api
        finally:
            api.client.close()
