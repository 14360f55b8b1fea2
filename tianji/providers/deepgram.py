"""Deepgram speech-to-text behind `/audio/transcriptions` (providers.md §3.12).

OpenAI uploads the audio as multipart form data; Deepgram takes the raw audio bytes
as the body of `POST /v1/listen` with every option in the query string
(`model`, `smart_format`, `language`, ...). Form fields that are not OpenAI's
(`diarize`, `keyterm`, ...) are Deepgram options and travel in the query as well.
The answer's first transcript becomes OpenAI's `{"text"}`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from tianji.errors import InvalidRequest, TianjiError, UnsupportedParams
from tianji.providers.base import Call, FormPart, StreamTranslator
from tianji.providers.errors import provider_error
from tianji.upstream.types import UpstreamRequest

__all__ = ["DeepgramAdapter", "transcription_answer"]

_PROVIDER = "deepgram"
# OpenAI transcription fields; every other form field is passed to Deepgram's query.
_OPENAI_FIELDS = frozenset(
    {"file", "model", "language", "prompt", "response_format", "temperature",
     "timestamp_granularities[]", "timestamp_granularities", "include[]", "stream",
     "chunking_strategy"}
)  # fmt: skip
# OpenAI fields Deepgram has no equivalent for (the unsupported-param rule applies).
_UNSUPPORTED = ("prompt", "temperature")
_FORMATS = frozenset({"json", "text", "verbose_json"})

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def form_fields(form: list[FormPart]) -> dict[str, str]:
    """The text fields of a form (the last value of a repeated name wins)."""
    return {p.name: p.value.decode("utf-8", "replace") for p in form if p.filename is None}


def check_unsupported(call: Call, fields: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """OpenAI fields the provider cannot express: 400, unless drop_params (then ignored)."""
    unsupported = [name for name in names if name in fields]
    drop = call.drop_params if call.drop_params is not None else call.deployment.drop_params
    if unsupported and not drop:
        raise UnsupportedParams(
            f"{call.deployment.provider.name} does not support parameters: {unsupported}. "
            "To drop them, set drop_params=true (request, deployment or litellm_settings).",
            param=unsupported[0],
        )


def response_format(fields: Mapping[str, str], provider: str) -> str:
    fmt = fields.get("response_format") or "json"
    if fmt not in _FORMATS:
        raise InvalidRequest(
            f"{provider} transcription supports response_format json, text or verbose_json, "
            f"not {fmt!r}",
            param="response_format",
        )
    return fmt


def transcription_answer(
    fmt: str, text: str, *, language: str, duration: float | None, words: list[dict[str, Any]]
) -> bytes:
    """OpenAI's answer in the asked format: `text` is the bare text, not JSON."""
    if fmt == "text":
        return text.encode()
    answer: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        answer = {"task": "transcribe", "language": language, "duration": duration or 0.0,
                  "text": text, "words": words}  # fmt: skip
    if duration is not None:
        answer["usage"] = {"type": "duration", "seconds": math.ceil(duration)}
    return _encode(answer)


class DeepgramAdapter:
    name = _PROVIDER

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.operation != "transcription" or call.form is None:
            raise InvalidRequest(f"deepgram does not serve {call.operation}")
        fields = form_fields(call.form)
        check_unsupported(call, fields, _UNSUPPORTED)
        response_format(fields, _PROVIDER)
        audio = next((p for p in call.form if p.name == "file" and p.filename is not None), None)
        if audio is None:
            raise InvalidRequest("'file' is required.", param="file")
        query = [("model", call.model), ("smart_format", "true")]
        if fields.get("language"):
            query.append(("language", fields["language"]))
        query += [(k, v) for k, v in fields.items() if k not in _OPENAI_FIELDS]
        query += call.deployment.query
        deployment = call.deployment
        url = f"{deployment.api_base}{deployment.provider.paths['transcription']}"
        headers = [*deployment.headers, *call.extra_headers]
        # Deepgram sniffs the container itself; the upload's type is only a hint.
        headers.append(("content-type", audio.content_type or "application/octet-stream"))
        return UpstreamRequest("POST", f"{url}?{urlencode(query)}", headers, audio.value)

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        try:
            data = _decode(body)
            channel = data["results"]["channels"][0]
            best = channel["alternatives"][0]
        except (msgspec.DecodeError, KeyError, IndexError, TypeError):
            raise provider_error(_PROVIDER, 502, "invalid response from deepgram") from None
        fields = form_fields(call.form or [])
        metadata = data.get("metadata") or {}
        duration = metadata.get("duration")
        words = [
            {"word": w.get("punctuated_word") or w.get("word", ""),
             "start": w.get("start", 0.0), "end": w.get("end", 0.0)}
            for w in best.get("words") or ()
        ]  # fmt: skip
        language = fields.get("language") or channel.get("detected_language") or "en"
        return transcription_answer(
            response_format(fields, _PROVIDER),
            str(best.get("transcript") or ""),
            language=language,
            duration=float(duration) if isinstance(duration, int | float) else None,
            words=words,
        )

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        """`{"err_code","err_msg"}` (v1) or `{"category","message"}` (newer answers)."""
        try:
            data = _decode(body)
            message = data.get("err_msg") or data.get("message") or data.get("reason")
            message = str(message or data)
        except (msgspec.DecodeError, AttributeError):
            message = body.decode("utf-8", "replace").strip()[:500] or "empty error response"
        return provider_error(_PROVIDER, status, message, retry_after=headers.get("retry-after"))
