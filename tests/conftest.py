"""Shared fixtures: a real gateway on 127.0.0.1 (uvicorn in a thread) and fake upstreams."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from tests.support.fake_upstream import FakeUpstream
from tianji.compile.pipeline import Built, build

MASTER_KEY = "sk-test-master"


@dataclass
class Gateway:
    url: str
    built: Built

    @property
    def v1(self) -> str:
        return self.url + "/v1"


@contextmanager
def running_gateway(
    config_text: str,
    tmp_path: Path,
    *,
    routes: Path | None = None,
    providers: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Gateway]:
    """Compile `config_text` and serve it on a free loopback port until the block ends."""
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    built, problems = build(
        config, routes=routes, providers=providers, env={**os.environ, **(env or {})}
    )
    assert built is not None, "\n".join(p.render() for p in problems)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(built.app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.01)
    try:
        yield Gateway(f"http://127.0.0.1:{port}", built)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def openai_config(upstream: FakeUpstream, *, extra: str = "", general: str = "") -> str:
    """A config whose `gpt-4o-mini` (and `openai/*` wildcard) go to the fake upstream."""
    return f"""
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini-upstream
      api_base: {upstream.base_url}
      api_key: sk-upstream-secret
      timeout: 2
      stream_timeout: 1
  - model_name: openai/*
    litellm_params:
      model: openai/*
      api_base: {upstream.base_url}
      api_key: sk-upstream-secret
  - model_name: rerank-model
    litellm_params:
      model: hosted_vllm/bge-reranker
      api_base: {upstream.base_url}
{extra}
general_settings:
  master_key: {MASTER_KEY}
{general}
"""


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(openai_config(upstream), tmp_path) as gw:
        yield gw
