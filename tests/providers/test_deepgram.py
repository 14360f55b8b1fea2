"""Deepgram behind /audio/transcriptions: the multipart upload becomes raw bytes plus
query options, the answer becomes OpenAI's; and the openai SDK through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import InvalidRequest, UnsupportedParams
from tianji.providers import Call, FormPart, adapter_for

pytestmark = pytest.mark.timeout(30)

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(64))
# A /v1/listen answer as Deepgram sends it (trimmed to one channel, two words).
LISTEN = {
    "metadata": {
        "transaction_key": "deprecated",
        "request_id": "6c1f6d0e-9a43-4a0e-a1c3-0f9b1b2d7e55",
        "sha256": "1b0d6c8d",
        "created": "2025-03-10T11:02:03.456Z",
        "duration": 2.351,
        "channels": 1,
        "models": ["30089e05-99d1-4376-b32e-c263170674af"],
        "model_info": {
            "30089e05-99d1-4376-b32e-c263170674af": {
                "name": "2-general-nova",
                "version": "2024-01-09.29447",
                "arch": "nova-2",
            }
        },
    },
    "results": {
        "channels": [
            {
                "alternatives": [
                    {
                        "transcript": "Bonjour, monde.",
                        "confidence": 0.99,
                        "words": [
                            {
                                "word": "bonjour",
                                "start": 0.08,
                                "end": 0.56,
                                "confidence": 0.99,
                                "punctuated_word": "Bonjour,",
                            },
                            {
                                "word": "monde",
                                "start": 0.64,
                                "end": 1.12,
                                "confidence": 0.98,
                                "punctuated_word": "monde.",
                            },
                        ],
                    }
                ],
                "detected_language": "fr",
            }
        ]
    },
}


def deployment(tmp_path: Path, params: str) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env={})
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def form(**fields: str) -> list[FormPart]:
    parts = [FormPart("file", AUDIO, "clip.wav", "audio/wav"), FormPart("model", b"whisper-1")]
    return parts + [FormPart(k, v.encode()) for k, v in fields.items()]


def make_call(d: Deployment, parts: list[FormPart]) -> Call:
    return Call("transcription", d, d.model, form=parts)


def test_request_is_raw_audio_with_query_options(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: deepgram/nova-2, api_key: dg_secret}")
    request = adapter_for("deepgram").build_request(
        make_call(d, form(language="fr", response_format="verbose_json", diarize="true"))
    )
    assert request.url == (
        "https://api.deepgram.com/v1/listen?model=nova-2&smart_format=true&language=fr&diarize=true"
    )
    assert request.body == AUDIO
    assert ("authorization", "Token dg_secret") in request.headers
    assert ("content-type", "audio/wav") in request.headers


def test_unsupported_fields_and_formats(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: deepgram/nova-2, api_key: k}")
    adapter = adapter_for("deepgram")
    with pytest.raises(UnsupportedParams) as info:
        adapter.build_request(make_call(d, form(prompt="names: Zoë")))
    assert info.value.param == "prompt"
    dropping = deployment(tmp_path, "{model: deepgram/nova-2, api_key: k, drop_params: true}")
    request = adapter.build_request(make_call(dropping, form(prompt="x", temperature="0.2")))
    assert "prompt" not in request.url and "temperature" not in request.url
    with pytest.raises(InvalidRequest) as bad:
        adapter.build_request(make_call(d, form(response_format="srt")))
    assert bad.value.param == "response_format"


def test_answers_in_each_format(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: deepgram/nova-2, api_key: k}")
    adapter = adapter_for("deepgram")
    body = msgspec.json.encode(LISTEN)

    def answer(**fields: str) -> bytes:
        out = adapter.translate_response(make_call(d, form(**fields)), body)
        assert out is not None
        return out

    assert msgspec.json.decode(answer()) == {
        "text": "Bonjour, monde.",
        "usage": {"type": "duration", "seconds": 3},
    }
    assert answer(response_format="text") == b"Bonjour, monde."
    verbose: dict[str, Any] = msgspec.json.decode(answer(response_format="verbose_json"))
    assert verbose["language"] == "fr" and verbose["duration"] == 2.351
    assert verbose["words"][0] == {"word": "Bonjour,", "start": 0.08, "end": 0.56}


def test_errors(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: deepgram/nova-2, api_key: k}")
    adapter = adapter_for("deepgram")
    old = b'{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"r"}'
    error = adapter.error_from_status(make_call(d, form()), 401, {}, old)
    assert (error.status, error.message) == (401, "deepgramException - Invalid credentials.")
    new = b'{"category":"INSUFFICIENT_PERMISSIONS","message":"Project has no access","details":""}'
    assert "no access" in adapter.error_from_status(make_call(d, form()), 403, {}, new).message


# --------------------------------------------------------------------------- gateway


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    config = f"""
model_list:
  - model_name: dg
    litellm_params:
      model: deepgram/nova-2
      api_base: {upstream.root_url}
      api_key: dg_secret
general_settings:
  master_key: {MASTER_KEY}
"""
    with running_gateway(config, tmp_path) as gw:
        yield gw


@pytest.mark.matrix("deepgram", "transcription")
def test_gateway_transcription(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=LISTEN, match="/v1/listen")
    client = openai.OpenAI(base_url=gateway.v1, api_key=MASTER_KEY, max_retries=0)
    text = client.audio.transcriptions.create(
        model="dg", file=("clip.wav", AUDIO, "audio/wav"), language="fr"
    )
    assert text.text == "Bonjour, monde."
    seen = upstream.last_request
    assert seen.path == "/v1/listen" and seen.body == AUDIO
    assert seen.query == {"model": "nova-2", "smart_format": "true", "language": "fr"}
    assert seen.headers["authorization"] == "Token dg_secret"

    verbose = client.audio.transcriptions.create(
        model="dg", file=("clip.wav", AUDIO, "audio/wav"), response_format="verbose_json"
    )
    assert verbose.duration == 2.351 and verbose.language == "fr"
    bare = client.audio.transcriptions.create(
        model="dg", file=("clip.wav", AUDIO, "audio/wav"), response_format="text"
    )
    assert bare == "Bonjour, monde."


@pytest.mark.matrix("deepgram", "errors")
def test_gateway_transcription_error(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave(
        "status",
        status=401,
        json={"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "r-2"},
    )
    client = openai.OpenAI(base_url=gateway.v1, api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.audio.transcriptions.create(model="dg", file=("a.wav", AUDIO, "audio/wav"))
    assert "Invalid credentials." in info.value.message
