"""Shared by the native-format and passthrough tests: configs, a providers file that
surely has the provider kinds they use, and Anthropic/Gemini wire samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import MASTER_KEY
from tests.support.fake_upstream import FakeUpstream

REPO = Path(__file__).resolve().parents[3]
SSE = "text/event-stream; charset=utf-8"

# Used only when the shipped providers.yaml lacks the kind: the native relays use
# the deployment's base URL and auth headers, not the adapter, so openai_compat will do.
_FALLBACK_KINDS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "adapter": "openai_compat",
        "base_url": "https://api.anthropic.com",
        "key_env": ["ANTHROPIC_API_KEY"],
        "auth": {"kind": "header", "name": "x-api-key"},
        "headers": {"anthropic-version": "2023-06-01"},
        "operations": ["chat"],
        "paths": {"chat": "/v1/messages"},
    },
    "gemini": {
        "adapter": "openai_compat",
        "base_url": "https://generativelanguage.googleapis.com",
        "key_env": ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        "auth": {"kind": "header", "name": "x-goog-api-key"},
        "operations": ["chat"],
    },
    # Token minting is the vertex_ai adapter's (tianji/providers/vertex.py): needed as is.
    "vertex_ai": {
        "adapter": "vertex_ai",
        "base_url": "https://aiplatform.googleapis.com",
        "auth": {"kind": "none"},
        "operations": ["chat"],
        "paths": {
            "chat": "/v1/projects/{project}/locations/{location}/publishers/google/models/"
            "{model}:generateContent"
        },
    },
    "bedrock": {
        "adapter": "openai_compat",
        "base_url": "https://bedrock-runtime.{region}.amazonaws.com",
        "auth": {"kind": "none"},
        "operations": ["chat"],
    },
    "watsonx": {
        "adapter": "openai_compat",
        "base_url": "https://us-south.ml.cloud.ibm.com",
        "key_env": ["WATSONX_TOKEN"],
        "operations": ["chat"],
    },
}


def providers_file(tmp_path: Path) -> Path | None:
    """None when the shipped providers.yaml already has every kind the tests use,
    else a copy of it with the missing kinds added."""
    spec = yaml.safe_load((REPO / "providers.yaml").read_text())
    missing = {k: v for k, v in _FALLBACK_KINDS.items() if k not in spec["providers"]}
    if not missing:
        return None
    spec["providers"].update(missing)
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def config(up: FakeUpstream, extra: str = "") -> str:
    """`gpt-4o-mini` on an OpenAI-compatible upstream, `claude-x` on an Anthropic one,
    `gemini-flash` on a Gemini one; all three are the same FakeUpstream."""
    return f"""
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini-upstream
      api_base: {up.base_url}
      api_key: sk-upstream-openai
      timeout: 5
      stream_timeout: 5
  - model_name: claude-x
    litellm_params:
      model: anthropic/claude-x-upstream
      api_base: {up.root_url}
      api_key: sk-ant-upstream-secret
      timeout: 5
      stream_timeout: 5
  - model_name: gemini-flash
    litellm_params:
      model: gemini/gemini-2.0-flash
      api_base: {up.root_url}
      api_key: gemini-upstream-key
      timeout: 5
      stream_timeout: 5
{extra}
general_settings:
  master_key: {MASTER_KEY}
"""


def anthropic_message(text: str = "Hello from Claude", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-x-upstream",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6, **usage},
    }


def _event(kind: str, payload: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"


def anthropic_sse(words: list[str]) -> bytes:
    """An Anthropic stream as the API sends it (ping included)."""
    start = {k: v for k, v in anthropic_message().items() if k != "content"}
    start.update(content=[], stop_reason=None, usage={"input_tokens": 12, "output_tokens": 1})
    text = [
        _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
        for w in words
    ]
    return "".join(
        [
            _event("message_start", {"message": start}),
            _event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            ),
            _event("ping", {}),
            *text,
            _event("content_block_stop", {"index": 0}),
            _event(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 7},
                },
            ),
            _event("message_stop", {}),
        ]
    ).encode()


def vertex_entry(up: FakeUpstream, tmp_path: Path) -> str:
    """A `vertex-flash` deployment on `up`, whose OAuth2 token endpoint is `up` too
    (authorized-user credentials: no RSA key needed)."""
    credentials = tmp_path / "adc.json"
    credentials.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "cid",
                "client_secret": "csecret",
                "refresh_token": "rtoken",
                "token_uri": up.url("/token"),
            }
        )
    )
    up.behave(
        "status",
        status=200,
        json={"access_token": "ya29.minted", "expires_in": 3600},
        match="/token",
    )
    return f"""
  - model_name: vertex-flash
    litellm_params:
      model: vertex_ai/gemini-2.0-flash
      api_base: {up.root_url}
      vertex_project: p1
      vertex_location: us-central1
      vertex_credentials: {credentials}
"""


def gemini_response(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
        "modelVersion": "gemini-2.0-flash",
    }


def gemini_sse(words: list[str]) -> bytes:
    frames = [json.dumps(gemini_response(w)) for w in words]
    return "".join(f"data: {f}\r\n\r\n" for f in frames).encode()
