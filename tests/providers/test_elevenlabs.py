"""ElevenLabs behind /audio/speech and /audio/transcriptions: request translation,
answers, errors, and the openai SDK through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream, parse_multipart
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import InvalidRequest, UnsupportedParams
from tianji.providers import Call, FormPart, adapter_for

pytestmark = pytest.mark.timeout(30)

VOICE = "JBFqnCBsd6RMkjVDRZzb"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x23" + bytes(200)
AUDIO = b"OggS\x00\x02" + bytes(100)
# A /v1/speech-to-text answer (words include the spacing entries ElevenLabs sends).
SCRIBE = {
    "language_code": "eng",
    "language_probability": 0.98,
    "text": "Hello there.",
    "words": [
        {"text": "Hello", "start": 0.12, "end": 0.48, "type": "word", "speaker_id": "speaker_0"},
        {"text": " ", "start": 0.48, "end": 0.52, "type": "spacing", "speaker_id": "speaker_0"},
        {"text": "there.", "start": 0.52, "end": 0.9, "type": "word", "speaker_id": "speaker_0"},
    ],
}


def deployment(tmp_path: Path, params: str) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env={})
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def speech(d: Deployment, body: dict[str, Any]) -> Call:
    return Call("speech", d, d.model, body={"input": "Hi.", "voice": VOICE, **body})


def test_speech_request(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: elevenlabs/eleven_multilingual_v2, api_key: xi_secret}")
    request = adapter_for("elevenlabs").build_request(
        speech(
            d,
            {
                "model": "tts",
                "response_format": "opus",
                "speed": 1.1,
                "voice_settings": {"stability": 0.4},
                "language_code": "en",
            },
        )
    )
    assert request.url == (
        f"https://api.elevenlabs.io/v1/text-to-speech/{VOICE}?output_format=opus_48000_128"
    )
    assert msgspec.json.decode(request.body) == {
        "text": "Hi.",
        "model_id": "eleven_multilingual_v2",
        "language_code": "en",
        "voice_settings": {"stability": 0.4, "speed": 1.1},
    }
    assert ("xi-api-key", "xi_secret") in request.headers

    by_id = adapter_for("elevenlabs").build_request(speech(d, {"voice": {"id": "v/1"}}))
    assert by_id.url.endswith("/v1/text-to-speech/v%2F1?output_format=mp3_44100_128")


def test_speech_refusals(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: elevenlabs/eleven_turbo_v2_5, api_key: k}")
    adapter = adapter_for("elevenlabs")
    with pytest.raises(InvalidRequest) as bad:
        adapter.build_request(speech(d, {"response_format": "wav"}))
    assert bad.value.param == "response_format"
    assert "ulaw_8000" in adapter.build_request(speech(d, {"response_format": "ulaw_8000"})).url
    with pytest.raises(UnsupportedParams):
        adapter.build_request(speech(d, {"instructions": "whisper it"}))
    dropping = deployment(tmp_path, "{model: elevenlabs/x, api_key: k, drop_params: true}")
    sent = msgspec.json.decode(adapter.build_request(speech(dropping, {"instructions": "x"})).body)
    assert "instructions" not in sent


def test_transcription_request_and_answer(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: elevenlabs/scribe_v1, api_key: k}")
    parts = [
        FormPart("file", AUDIO, "note.ogg", "audio/ogg"),
        FormPart("model", b"whisper-1"),
        FormPart("language", b"en"),
        FormPart("diarize", b"true"),
    ]
    call = Call("transcription", d, d.model, form=parts)
    request = adapter_for("elevenlabs").build_request(call)
    assert request.url == "https://api.elevenlabs.io/v1/speech-to-text"
    content_type = dict(request.headers)["content-type"]
    sent = {p.name: p for p in parse_multipart(request.body, content_type)}
    assert sent["model_id"].data == b"scribe_v1" and sent["language_code"].data == b"en"
    assert sent["file"].data == AUDIO and sent["file"].filename == "note.ogg"
    assert sent["diarize"].data == b"true" and "model" not in sent

    verbose_call = Call(
        "transcription", d, d.model, form=[*parts, FormPart("response_format", b"verbose_json")]
    )
    out = adapter_for("elevenlabs").translate_response(verbose_call, msgspec.json.encode(SCRIBE))
    verbose = msgspec.json.decode(out or b"")
    assert verbose["text"] == "Hello there." and verbose["duration"] == 0.9
    assert [w["word"] for w in verbose["words"]] == ["Hello", "there."]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            401,
            {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
            "Invalid API key",
        ),
        (
            404,
            {
                "detail": {
                    "status": "voice_not_found",
                    "message": "A voice with the voice_id x was not found.",
                }
            },
            "was not found",
        ),
        (
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "text"],
                        "msg": "field required",
                        "type": "value_error.missing",
                    }
                ]
            },
            "field required",
        ),
    ],
)
def test_errors(tmp_path: Path, status: int, body: dict[str, Any], message: str) -> None:
    d = deployment(tmp_path, "{model: elevenlabs/x, api_key: k}")
    error = adapter_for("elevenlabs").error_from_status(
        speech(d, {}), status, {}, msgspec.json.encode(body)
    )
    assert error.status == status and message in error.message


# --------------------------------------------------------------------------- gateway


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    config = f"""
model_list:
  - model_name: voice
    litellm_params:
      model: elevenlabs/eleven_multilingual_v2
      api_base: {upstream.root_url}
      api_key: xi_secret
  - model_name: scribe
    litellm_params:
      model: elevenlabs/scribe_v1
      api_base: {upstream.root_url}
      api_key: xi_secret
general_settings:
  master_key: {MASTER_KEY}
"""
    with running_gateway(config, tmp_path) as gw:
        yield gw


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.matrix("elevenlabs", "speech")
def test_gateway_speech(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, body=MP3, content_type="audio/mpeg")
    audio = client(gateway).audio.speech.create(model="voice", voice=VOICE, input="Bonjour !")
    assert audio.content == MP3
    assert audio.response.headers["content-type"] == "audio/mpeg"
    seen = upstream.last_request
    assert seen.path == f"/v1/text-to-speech/{VOICE}"
    assert seen.query == {"output_format": "mp3_44100_128"}
    assert seen.json == {"text": "Bonjour !", "model_id": "eleven_multilingual_v2"}
    assert seen.headers["xi-api-key"] == "xi_secret" and "authorization" not in seen.headers


@pytest.mark.matrix("elevenlabs", "transcription")
@pytest.mark.matrix("elevenlabs", "errors")
def test_gateway_transcription_and_error(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=SCRIBE, times=1)
    text = client(gateway).audio.transcriptions.create(
        model="scribe", file=("note.ogg", AUDIO, "audio/ogg")
    )
    assert text.text == "Hello there."
    assert upstream.last_request.path == "/v1/speech-to-text"

    refusal = {
        "detail": {"status": "quota_exceeded", "message": "This request exceeds your quota."}
    }
    upstream.behave("status", status=429, json=refusal, times=1)
    with pytest.raises(openai.RateLimitError) as info:
        client(gateway).audio.speech.create(model="voice", voice=VOICE, input="x")
    assert "exceeds your quota" in info.value.message
