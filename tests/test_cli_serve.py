"""`tianji serve` with the quickstart config, as the README starts it, answers the SDK."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-tianji-quickstart"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "tianji",
        "serve",
        "--config",
        "examples/quickstart.yaml",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(url + "/health/readiness").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tianji serve did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.matrix("mock", "chat")
@pytest.mark.matrix("mock", "stream")
@pytest.mark.parametrize("suffix", ["/v1", ""])
def test_sdk_sync(served: str, suffix: str) -> None:
    client = openai.OpenAI(base_url=served + suffix, api_key=KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}]
    )
    assert reply.choices[0].message.content == "This is a mock response from tianji. You said: ping"
    fixed = client.chat.completions.create(
        model="tianji-fixed", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in fixed if c.choices)
        == "Hello from tianji!"
    )
    assert [m.id for m in client.models.list()] == [
        "gpt-4o-mini",
        "tianji-fixed",
        "text-embedding-3-small",
    ]


@pytest.mark.matrix("mock", "embeddings")
async def test_sdk_async(served: str) -> None:
    client = openai.AsyncOpenAI(base_url=served, api_key=KEY, max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "pong"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.endswith("You said: pong")
    embedding = await client.embeddings.create(model="text-embedding-3-small", input="abc")
    assert len(embedding.data[0].embedding) == 8
    await client.close()


def test_azure_sdk(served: str) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=served, api_key=KEY, api_version="2024-10-21", max_retries=0
    )
    reply = client.chat.completions.create(
        model="tianji-fixed", messages=[{"role": "user", "content": "x"}]
    )
    assert reply.choices[0].message.content == "Hello from tianji!"


def test_health_and_utils(served: str) -> None:
    assert httpx.get(served + "/health/liveliness").json() == "I'm alive!"
    headers = {"authorization": f"Bearer {KEY}"}
    params = httpx.get(
        served + "/utils/supported_openai_params", params={"model": "gpt-4o-mini"}, headers=headers
    ).json()
    assert "tools" in params and "logit_bias" in params
    count = httpx.post(
        served + "/utils/token_counter",
        headers=headers,
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world"}]},
    )
    assert count.json()["total_tokens"] == 3 + 1 + 2 + 3  # per message + role + text + priming
    assert count.json()["model_used"] == "o200k_base"


def test_workers_get_the_same_specs(tmp_path: Path) -> None:
    """With --workers, each worker rebuilds the app: --providers must reach it too."""
    from tests.support.fake_upstream import FakeUpstream

    shipped = (ROOT / "providers.yaml").read_text()
    with FakeUpstream() as up, socket.socket() as s:
        providers = tmp_path / "providers.yaml"
        providers.write_text(
            shipped + f"\n  acme:\n    base_url: {up.base_url}\n    auth: {{kind: none}}\n"
        )
        config = tmp_path / "c.yaml"
        config.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: acme/x}\n")
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        command = [
            sys.executable,
            "-m",
            "tianji",
            "serve",
            "--config",
            str(config),
            "--providers",
            str(providers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ]
        process = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    reply = httpx.post(
                        f"http://127.0.0.1:{port}/v1/chat/completions",
                        json={"model": "a", "messages": [{"role": "user", "content": "w"}]},
                    )
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "workers did not start"
                    time.sleep(0.2)
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == "echo: w"
        finally:
            process.terminate()
            process.wait(timeout=15)
