"""Amazon SageMaker endpoints: `sagemaker_chat/` (Messages API) and `sagemaker/` (TGI).

`{base}/endpoints/{endpoint}/invocations` (or `/invocations-response-stream`),
`base` = `https://runtime.sagemaker.{region}.amazonaws.com` with the region filled
in, or the deployment's api_base; signed with SigV4 (service `sagemaker`).
Facts: providers.md §3.9.

* `sagemaker_chat/<endpoint>`: the OpenAI body as is; the answer is OpenAI's.
* `sagemaker/<endpoint>`: a TGI body `{"inputs", "parameters", "stream"}`. The prompt
  is the message texts joined by newlines: no model chat template is applied
  (use `sagemaker_chat/` for chat-tuned containers).
* Streams arrive as AWS event-stream `PayloadPart` frames whose payload is a piece
  of the container's own SSE; the pieces are re-joined and parsed as SSE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from tianji.compile.model import Deployment
from tianji.errors import InvalidRequest, TianjiError, UpstreamProtocolError
from tianji.providers.base import Call, StreamTranslator
from tianji.providers.bedrock import aws_error
from tianji.providers.eventstream import EventStreamDecoder, Frame
from tianji.providers.openai_compat import apply_params
from tianji.providers.shapes import decode_object, embedding_list
from tianji.providers.sigv4 import aws_problems, aws_region, sign_for
from tianji.providers.sse import DONE, ChunkWriter, SSEParser
from tianji.tokens import count_text
from tianji.upstream.types import UpstreamRequest

__all__ = ["SageMakerAdapter", "tgi_prompt"]

SERVICE = "sagemaker"
CHAT_PROVIDER = "sagemaker_chat"
_TGI_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}
# OpenAI fields with a TGI translation; any other extra (top_k, repetition_penalty,
# seed, ...) is a TGI parameter already and goes into `parameters` unchanged.
_TRANSLATED = frozenset(
    {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
     "temperature", "top_p", "stop"}
)  # fmt: skip
_encode = msgspec.json.encode


def _messages_api(call: Call) -> bool:
    return call.deployment.provider.name == CHAT_PROVIDER


def tgi_prompt(messages: Any) -> str:
    texts = []
    for message in messages or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            if any(not isinstance(p, dict) or p.get("type") != "text" for p in content):
                raise InvalidRequest("sagemaker TGI endpoints take text content only")
            content = "".join(p.get("text", "") for p in content)
        texts.append(content or "")
    return "\n".join(texts)


def _tgi_body(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    parameters: dict[str, Any] = {"details": True, "return_full_text": False}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        parameters["max_new_tokens"] = max_tokens
    temperature = body.get("temperature")
    if temperature is not None:
        # TGI rejects temperature 0; greedy decoding is do_sample false.
        parameters["do_sample"] = temperature > 0
        if temperature > 0:
            parameters["temperature"] = temperature
    if body.get("top_p") is not None:
        parameters["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        parameters["stop"] = [stop] if isinstance(stop, str) else list(stop)
    parameters.update({k: v for k, v in body.items() if k not in _TRANSLATED})
    return {"inputs": tgi_prompt(body.get("messages")), "parameters": parameters, "stream": stream}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class SageMakerAdapter:
    name = "sagemaker"

    def check(self, deployment: Deployment, env: Mapping[str, str]) -> list[str]:
        """Configuration problems `tianji check` reports for this deployment."""
        return aws_problems(deployment.params, env, bearer=False)

    def build_request(self, call: Call) -> UpstreamRequest:
        body = apply_params(call)
        if call.operation == "embeddings":
            payload: dict[str, Any] = {"text_inputs": _texts(body.get("input"))}
        elif call.operation != "chat":
            raise InvalidRequest(f"sagemaker does not support {call.operation}")
        elif _messages_api(call):
            payload = body
        else:
            payload = _tgi_body(body, call.stream)
        raw = _encode(payload)
        params = call.deployment.params
        base = call.deployment.api_base.replace("{region}", aws_region(params))
        action = "invocations-response-stream" if call.stream else "invocations"
        url = f"{base}/endpoints/{quote(call.model, safe='')}/{action}"
        headers = [
            *call.deployment.headers,
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ]
        return UpstreamRequest(
            "POST", url, sign_for(params, SERVICE, "POST", url, headers, raw), raw
        )

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        if call.operation == "chat" and _messages_api(call):
            return None
        data = _decode(body)
        request = call.body or {}
        if call.operation == "embeddings":
            vectors = data.get("embedding") if isinstance(data, dict) else None
            if not isinstance(vectors, list):
                raise UpstreamProtocolError("invalid response from sagemaker: no embedding")
            tokens = sum(count_text(t, call.model) for t in _texts(request.get("input")))
            return embedding_list(call.model, vectors, tokens, request.get("encoding_format"))
        return _encode(_tgi_completion(call, data))

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        if _messages_api(call):
            return _ChatStream(call)
        return _TgiStream(call)

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        error_type = headers.get("x-amzn-errortype", "").split(":", 1)[0]
        if error_type == "ModelError":
            # The container answered an error itself: pass on its status and message.
            try:
                data = msgspec.json.decode(body)
            except msgspec.DecodeError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("OriginalStatusCode"), int):
                message = _encode({"message": data.get("OriginalMessage") or data.get("Message")})
                return aws_error(self.name, data["OriginalStatusCode"], "", message)
        return aws_error(self.name, status, error_type, body, headers.get("retry-after"))


def _decode(body: bytes) -> Any:
    """TGI answers a list of generations; other containers an object."""
    if body.lstrip().startswith(b"["):
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise UpstreamProtocolError("invalid response from sagemaker: not JSON") from None
    return decode_object("sagemaker", body)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequest("sagemaker embeddings take text input", param="input")


def _tgi_completion(call: Call, data: Any) -> dict[str, Any]:
    first = data[0] if isinstance(data, list) and data else data
    if not isinstance(first, dict) or not isinstance(first.get("generated_text"), str):
        raise UpstreamProtocolError("invalid response from sagemaker: no generated_text")
    details = first.get("details") or {}
    finish = _TGI_FINISH.get(str(details.get("finish_reason")), "stop")
    completion = int(details.get("generated_tokens") or 0)
    writer = ChunkWriter(call.model)
    message = {"role": "assistant", "content": first["generated_text"]}
    return {
        "id": writer.id,
        "object": "chat.completion",
        "created": writer.created,
        "model": call.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(_prompt_tokens(call), completion),
    }


def _prompt_tokens(call: Call) -> int:
    """TGI does not report prompt tokens unless asked for the whole prefill: estimated."""
    return count_text(tgi_prompt((call.body or {}).get("messages")), call.model)


class _PayloadEvents:
    """PayloadPart frames -> the data of the container's SSE events; error frames raise."""

    def __init__(self) -> None:
        self._frames = EventStreamDecoder()
        self._sse = SSEParser()
        self._error: TianjiError | None = None

    def feed(self, chunk: bytes) -> list[str]:
        """Events so far; an error after some events is raised by the next call."""
        if self._error is not None:
            raise self._error
        out: list[str] = []
        try:
            for frame in self._frames.feed(chunk):
                out += [e.data for e in self._sse.feed(self._payload(frame))]
        except TianjiError as exc:
            if not out:
                raise
            self._error = exc
        return out

    def finish(self) -> list[str]:
        if self._error is not None:
            raise self._error
        if self._frames.pending:
            raise UpstreamProtocolError("sagemaker stream ended inside a frame")
        return [e.data for e in self._sse.close()]

    @staticmethod
    def _payload(frame: Frame) -> bytes:
        if frame.message_type == "event":
            return frame.payload if frame.event_type == "PayloadPart" else b""
        error_type = frame.header(":exception-type") or frame.header(":error-code")
        payload = frame.payload or _encode({"message": frame.header(":error-message")})
        raise aws_error("sagemaker", 502, error_type, payload)


class _ChatStream:
    """A Messages API container's OpenAI SSE, relayed event by event."""

    def __init__(self, call: Call) -> None:
        self._events = _PayloadEvents()
        self._done = False

    def feed(self, chunk: bytes) -> bytes:
        return self._relay(self._events.feed(chunk))

    def close(self) -> bytes:
        out = self._relay(self._events.finish())
        return out if self._done else out + DONE

    def _relay(self, events: list[str]) -> bytes:
        out = b""
        for data in events:
            if self._done:
                continue
            self._done = data.strip() == "[DONE]"
            out += DONE if self._done else b"data: " + data.encode() + b"\n\n"
        return out


class _TgiStream:
    """TGI token events `{"token":{"text","special"},"details"}` -> chat chunks."""

    def __init__(self, call: Call) -> None:
        self._events = _PayloadEvents()
        self._call = call
        self._writer = ChunkWriter(call.model)
        options = (call.body or {}).get("stream_options")
        self._include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self._out = [self._writer.chunk({"role": "assistant", "content": ""})]
        self._completion_tokens = 0
        self._finished = False
        self._error: TianjiError | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._error is not None:
            raise self._error
        try:
            for data in self._events.feed(chunk):
                self._event(data)
        except TianjiError as exc:
            if not self._out:
                raise
            self._error = exc  # raised by the next call, after this output
        out, self._out = b"".join(self._out), []
        return out

    def close(self) -> bytes:
        if self._error is not None:
            raise self._error
        for data in self._events.finish():
            self._event(data)
        if not self._finished:
            self._out.append(self._writer.chunk({}, "stop"))
        if self._include_usage:
            usage = _usage(_prompt_tokens(self._call), self._completion_tokens)
            self._out.append(self._writer.usage(usage))
        return b"".join(self._out) + DONE

    def _event(self, data: str) -> None:
        try:
            event = msgspec.json.decode(data)
        except msgspec.DecodeError:
            raise UpstreamProtocolError("invalid event from sagemaker: not JSON") from None
        if not isinstance(event, dict):
            return
        if "error" in event:
            raise aws_error("sagemaker", 502, "", _encode({"message": event["error"]}))
        token = event.get("token") or {}
        self._completion_tokens += 1
        if token.get("text") and not token.get("special"):
            self._out.append(self._writer.chunk({"content": token["text"]}))
        details = event.get("details")
        if isinstance(details, dict) and not self._finished:
            self._finished = True
            self._completion_tokens = int(details.get("generated_tokens") or 0)
            finish = _TGI_FINISH.get(str(details.get("finish_reason")), "stop")
            self._out.append(self._writer.chunk({}, finish))
