"""Request building for the OpenAI-compatible family, Azure and the mock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import UnsupportedParams
from tianji.providers import Call, adapter_for
from tianji.upstream.mock import MockTransport
from tianji.upstream.types import Timeouts

CHAT_PARAMS = frozenset({"temperature", "logit_bias", "top_p", "stream", "max_tokens"})


def _deployment(tmp_path: Path, params: str, providers: Path | None = None) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, providers=providers, env={})
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def _call(deployment: Deployment, body: dict[str, Any], **kw: Any) -> Call:
    return Call("chat", deployment, deployment.model, body=body, openai_params=CHAT_PARAMS, **kw)


def test_defaults_and_model(tmp_path: Path) -> None:
    d = _deployment(tmp_path, "{model: openai/gpt-x, api_key: k, temperature: 0.2, max_tokens: 9}")
    request = adapter_for("openai_compat").build_request(
        _call(d, {"model": "m", "temperature": 1, "messages": [], "top_k": 3})
    )
    sent = msgspec.json.decode(request.body)
    # Client values win over deployment defaults; unknown extras pass through.
    assert sent == {"model": "gpt-x", "temperature": 1, "max_tokens": 9, "messages": [], "top_k": 3}
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert ("authorization", "Bearer k") in request.headers


def _narrow_providers(tmp_path: Path) -> Path:
    shipped = (Path(__file__).resolve().parents[2] / "providers.yaml").read_text()
    path = tmp_path / "providers.yaml"
    path.write_text(
        shipped.replace("param_sets:\n", "param_sets:\n  narrow: [temperature, stream]\n")
        + "  narrow:\n    base_url: http://x\n    params: {chat: narrow}\n"
        "    param_renames: {max_completion_tokens: max_tokens}\n"
    )
    return path


@pytest.mark.matrix("openai_compat", "drop_params")
def test_unsupported_param_is_rejected_or_dropped(tmp_path: Path) -> None:
    d = _deployment(tmp_path, "{model: narrow/a, api_key: k}", _narrow_providers(tmp_path))
    adapter = adapter_for("openai_compat")
    with pytest.raises(UnsupportedParams) as info:
        adapter.build_request(_call(d, {"messages": [], "logit_bias": {}}))
    assert info.value.param == "logit_bias" and info.value.status == 400
    dropped = adapter.build_request(_call(d, {"messages": [], "logit_bias": {}}, drop_params=True))
    assert "logit_bias" not in msgspec.json.decode(dropped.body)


def test_param_renames(tmp_path: Path) -> None:
    d = _deployment(tmp_path, "{model: narrow/a, api_key: k}", _narrow_providers(tmp_path))
    request = adapter_for("openai_compat").build_request(
        _call(d, {"messages": [], "max_completion_tokens": 5})
    )
    assert msgspec.json.decode(request.body)["max_tokens"] == 5


@pytest.mark.parametrize(
    ("version", "url"),
    [
        (
            "2024-06-01",
            "https://r.example/openai/deployments/dep-1/chat/completions?api-version=2024-06-01",
        ),
        (
            None,
            "https://r.example/openai/deployments/dep-1/chat/completions?api-version=2024-10-21",
        ),
        ("v1", "https://r.example/openai/v1/chat/completions"),
    ],
)
def test_azure_urls(tmp_path: Path, version: str | None, url: str) -> None:
    extra = f", api_version: '{version}'" if version else ""
    d = _deployment(
        tmp_path, f"{{model: azure/dep-1, api_base: 'https://r.example/', api_key: az{extra}}}"
    )
    request = adapter_for("azure").build_request(_call(d, {"messages": []}))
    assert request.url == url
    assert ("api-key", "az") in request.headers
    assert not any(name == "authorization" for name, _ in request.headers)


def test_mock_fixed_reply_and_stream(tmp_path: Path) -> None:
    d = _deployment(tmp_path, "{model: mock/m, mock_response: 'fixed words here'}")
    adapter = adapter_for("mock")

    async def run(body: dict[str, Any]) -> bytes:
        response = await MockTransport().send(adapter.build_request(_call(d, body)), Timeouts())
        return b"".join([chunk async for chunk in response.iter_bytes()])

    plain = msgspec.json.decode(asyncio.run(run({"messages": []})))
    assert plain["choices"][0]["message"]["content"] == "fixed words here"
    streamed = asyncio.run(run({"messages": [], "stream": True}))
    assert streamed.endswith(b"data: [DONE]\n\n") and streamed.count(b"data: ") == 6
