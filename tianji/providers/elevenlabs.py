"""ElevenLabs: text-to-speech behind `/audio/speech` and speech-to-text behind
`/audio/transcriptions` (providers.md §3.12).

Speech: OpenAI's `{model, input, voice, response_format, speed}` becomes
`POST /v1/text-to-speech/{voice}?output_format=…` with `{"text", "model_id",
"voice_settings"}`; `voice` is an ElevenLabs voice id. The audio bytes are relayed
with ElevenLabs' content type. Transcription re-encodes the form for
`/v1/speech-to-text` (`model_id`, `language_code`) and keeps the answer's `text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from tianji.errors import InvalidRequest, TianjiError
from tianji.providers.base import Call, FormPart, StreamTranslator
from tianji.providers.deepgram import (
    check_unsupported,
    form_fields,
    response_format,
    transcription_answer,
)
from tianji.providers.errors import provider_error
from tianji.providers.multipart import encode_form
from tianji.providers.openai_compat import apply_params
from tianji.upstream.types import UpstreamRequest

__all__ = ["OUTPUT_FORMATS", "ElevenLabsAdapter"]

_PROVIDER = "elevenlabs"
# OpenAI response_format -> ElevenLabs output_format. OpenAI's `pcm` is 24 kHz 16-bit
# little-endian, which is exactly pcm_24000. ElevenLabs has no aac, flac or wav.
OUTPUT_FORMATS = {"mp3": "mp3_44100_128", "opus": "opus_48000_128", "pcm": "pcm_24000"}
# Transcription form fields that are OpenAI's; any other field is an ElevenLabs option.
_OPENAI_FIELDS = frozenset(
    {"file", "model", "language", "prompt", "response_format", "temperature",
     "timestamp_granularities[]", "timestamp_granularities", "include[]", "stream",
     "chunking_strategy"}
)  # fmt: skip

_decode = msgspec.json.decode
_encode = msgspec.json.encode


class ElevenLabsAdapter:
    name = _PROVIDER

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.operation == "speech":
            return self._speech(call)
        if call.operation == "transcription" and call.form is not None:
            return self._transcription(call)
        raise InvalidRequest(f"elevenlabs does not serve {call.operation}")

    def _speech(self, call: Call) -> UpstreamRequest:
        body = apply_params(call)
        check_unsupported(call, body, ("instructions",))
        body.pop("instructions", None)
        if body.pop("stream_format", "audio") != "audio":
            raise InvalidRequest("elevenlabs speech streams audio only", param="stream_format")
        voice = body.pop("voice")
        voice_id = str(voice.get("id", "")) if isinstance(voice, dict) else str(voice)
        output_format = _output_format(body.pop("response_format", None) or "mp3")
        native: dict[str, Any] = {"text": body.pop("input"), "model_id": body.pop("model")}
        speed = body.pop("speed", None)
        native.update(body)  # ElevenLabs extras: voice_settings, language_code, seed, ...
        if speed is not None:
            settings = native.get("voice_settings")
            native["voice_settings"] = {**(settings if isinstance(settings, dict) else {}),
                                        "speed": speed}  # fmt: skip
        deployment = call.deployment
        path = deployment.provider.paths["speech"]
        query = urlencode([("output_format", output_format), *deployment.query])
        url = f"{deployment.api_base}{path}/{quote(voice_id, safe='')}?{query}"
        headers = self._headers(call, "application/json")
        return UpstreamRequest("POST", url, headers, _encode(native))

    def _transcription(self, call: Call) -> UpstreamRequest:
        assert call.form is not None
        fields = form_fields(call.form)
        check_unsupported(call, fields, ("prompt", "temperature"))
        response_format(fields, _PROVIDER)
        parts = [FormPart("model_id", call.model.encode())]
        parts += [p for p in call.form if p.name == "file" and p.filename is not None]
        if len(parts) == 1:
            raise InvalidRequest("'file' is required.", param="file")
        if fields.get("language"):
            parts.append(FormPart("language_code", fields["language"].encode()))
        parts += [FormPart(k, v.encode()) for k, v in fields.items() if k not in _OPENAI_FIELDS]
        body, content_type = encode_form(parts)
        deployment = call.deployment
        url = deployment.api_base + deployment.provider.paths["transcription"]
        if deployment.query:
            url += "?" + urlencode(deployment.query)
        return UpstreamRequest("POST", url, self._headers(call, content_type), body)

    def _headers(self, call: Call, content_type: str) -> list[tuple[str, str]]:
        return [*call.deployment.headers, *call.extra_headers, ("content-type", content_type)]

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        if call.operation == "speech":
            return None  # audio bytes, relayed with their content type
        try:
            data = _decode(body)
            text = str(data["text"])
        except (msgspec.DecodeError, KeyError, TypeError):
            raise provider_error(_PROVIDER, 502, "invalid response from elevenlabs") from None
        fields = form_fields(call.form or [])
        words = [
            {"word": w.get("text", ""), "start": w.get("start", 0.0), "end": w.get("end", 0.0)}
            for w in data.get("words") or ()
            if isinstance(w, dict) and w.get("type", "word") == "word"
        ]
        language = fields.get("language") or data.get("language_code") or "en"
        duration = float(words[-1]["end"]) if words else None
        return transcription_answer(
            response_format(fields, _PROVIDER),
            text,
            language=language,
            duration=duration,
            words=words,
        )

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        return provider_error(
            _PROVIDER, status, _error_message(body), retry_after=headers.get("retry-after")
        )


def _output_format(requested: str) -> str:
    if requested in OUTPUT_FORMATS:
        return OUTPUT_FORMATS[requested]
    if "_" in requested:
        return requested  # already an ElevenLabs format (mp3_22050_32, ulaw_8000, ...)
    raise InvalidRequest(
        f"elevenlabs cannot produce {requested!r} audio (mp3, opus or pcm)",
        param="response_format",
    )


def _error_message(body: bytes) -> str:
    """`{"detail": {"status", "message"}}`, `{"detail": "..."}` or a 422 list of problems."""
    try:
        detail = _decode(body).get("detail")
    except (msgspec.DecodeError, AttributeError):
        return body.decode("utf-8", "replace").strip()[:500] or "empty error response"
    if isinstance(detail, dict):
        return str(detail.get("message") or detail.get("status") or detail)
    if isinstance(detail, list):
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail)
