"""A real HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI wire format.

Integration tests point the gateway (or an SDK) at ``FakeUpstream.base_url`` and
then assert on what the server received (``up.requests``) and on what came back.
The server runs on its own asyncio event loop in a background thread, so it
works the same from synchronous tests and from async tests with their own loop::

    with FakeUpstream() as up:
        up.behave("status", status=429, times=1)
        ...                                   # first call fails, later ones succeed
        assert up.requests[-1].json["model"] == "gpt-4o-mini"

The HTTP layer is hand-written on ``asyncio.start_server`` so that scripted
behaviours (``up.behave``) can misbehave at the byte level: stall, close the
socket mid-stream, answer garbage, and so on.

Default answers are deterministic and derived from the request, so a test can
tell that a response really came from this upstream:

* chat / text completions / responses reply ``"echo: " + <last user text>``;
* embeddings are ``fake_embedding(text, dim)``;
* usage counts are whitespace-separated word counts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "Behaviour",
    "BehaviourKind",
    "Disconnect",
    "FakeUpstream",
    "FormPart",
    "Recorded",
    "echo_reply",
    "fake_embedding",
    "parse_multipart",
]

BehaviourKind: TypeAlias = Literal[
    "status",
    "invalid_json",
    "slow",
    "stall_stream",
    "close_mid_stream",
    "close_before_response",
    "garbage",
    "stream_forever",
]
DisconnectPhase: TypeAlias = Literal["waiting", "responding", "streaming"]

#: Options accepted by each behaviour kind (anything else is a TypeError).
BEHAVIOUR_OPTIONS: dict[str, frozenset[str]] = {
    "status": frozenset({"status", "json", "body", "headers", "content_type"}),
    "invalid_json": frozenset({"status", "body"}),
    "slow": frozenset({"delay"}),
    "stall_stream": frozenset({"n"}),
    "close_mid_stream": frozenset({"n", "reset"}),
    "close_before_response": frozenset(),
    "garbage": frozenset({"data"}),
    "stream_forever": frozenset({"interval"}),
}

CREATED = 1_700_000_000
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "whisper-1", "tts-1")
DEFAULT_GARBAGE = b"\x00\xffTHIS IS NOT HTTP\r\n\r\n\x01\x02"
DEFAULT_INVALID_JSON = b'{"id": "chatcmpl-broken", "choices": [{"message": '
MAX_LINE = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FormPart:
    """One part of a ``multipart/form-data`` body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Recorded:
    """One request as the upstream received it (body already de-chunked)."""

    index: int  # position in ``FakeUpstream.requests``
    connection: int  # id of the TCP connection it arrived on (1, 2, ...)
    method: str
    target: str  # raw request-target, e.g. "/v1/x?a=1"
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    json: Any  # parsed body, or None when it is not JSON
    http_version: str

    def form(self) -> list[FormPart]:
        """Parse the body as multipart/form-data (empty list if it is not)."""
        return parse_multipart(self.body, self.headers.get("content-type", ""))


@dataclass(frozen=True)
class Disconnect:
    """The client went away while the server still had something to send.

    ``phase`` is ``"waiting"`` (before any response byte, e.g. during ``slow``),
    ``"responding"`` (writing a plain body) or ``"streaming"`` (after SSE headers).
    """

    connection: int
    request_index: int
    path: str
    phase: DisconnectPhase
    events_sent: int
    at: float  # time.monotonic() when noticed


@dataclass
class Behaviour:
    """A scripted behaviour; returned by ``FakeUpstream.behave`` so tests can read ``hits``."""

    kind: BehaviourKind
    options: dict[str, Any]
    remaining: int | None  # None: applies to every matching request
    match: str | None  # substring the request path must contain; None matches all
    hits: int = 0


# --------------------------------------------------------------------------- helpers


def fake_embedding(text: str, dim: int = 8) -> list[float]:
    """Deterministic vector for ``text``; values are exact in float32, in [-1, 1)."""
    values: list[float] = []
    for counter in itertools.count():
        if len(values) >= dim:
            break
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((byte - 128) / 128 for byte in digest)
    return values[:dim]


def echo_reply(text: str) -> str:
    """The reply text the fake gives for a last user message ``text``."""
    return f"echo: {text}"


def parse_multipart(body: bytes, content_type: str) -> list[FormPart]:
    """Minimal multipart/form-data parser (enough for what SDKs send)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not found:
        return []
    delimiter = b"--" + found.group(1).encode("latin-1")
    parts: list[FormPart] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if sep:
            parts.append(_form_part(head, data.removesuffix(b"\r\n")))
    return parts


def _form_part(head: bytes, data: bytes) -> FormPart:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    return FormPart(
        name=_disposition_param(disposition, "name") or "",
        filename=_disposition_param(disposition, "filename"),
        content_type=headers.get("content-type"),
        data=data,
    )


def _disposition_param(disposition: str, key: str) -> str | None:
    found = re.search(rf'(?:^|;)\s*{key}="([^"]*)"', disposition)
    return found.group(1) if found else None


def _words(text: str) -> int:
    return len(text.split())


def _pieces(text: str) -> list[str]:
    """Split into word pieces whose concatenation is exactly ``text``."""
    return [piece for piece in re.split(r"(?<=\S)(?=\s)", text) if piece]


def _text_of(content: Any) -> str:
    """Text of a message ``content``: a string or a list of parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if isinstance(t, str))
    return ""


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    users = [m for m in messages if isinstance(m, dict) and m.get("role", "user") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def _all_text_words(messages: Any) -> int:
    if not isinstance(messages, list):
        return _words(_text_of(messages))
    return sum(_words(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }
    kind = kinds.get(status, "server_error" if status >= 500 else "invalid_request_error")
    text = message or f"fake upstream error {status}"
    return {"error": {"message": text, "type": kind, "param": None, "code": None}}


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _sse(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _chunk_frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _wants_keep_alive(version: str, headers: Mapping[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if "close" in tokens:
        return False
    return version == "HTTP/1.1" or "keep-alive" in tokens


# --------------------------------------------------------------------------- OpenAI bodies


@dataclass(frozen=True)
class _Reply:
    """A response to send: a plain body, or an SSE stream when ``events`` is set."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[Any] | None = None  # payloads; "[DONE]" is appended by the sender


def _json_reply(payload: Any, status: int = 200) -> _Reply:
    return _Reply(status, {"content-type": "application/json"}, json.dumps(payload).encode())


def _model_of(req: Recorded, body: Mapping[str, Any]) -> str:
    """Request model; for Azure-style paths without one, the deployment name."""
    if isinstance(body.get("model"), str):
        return str(body["model"])
    deployment = re.search(r"/deployments/([^/]+)/", req.path)
    return deployment.group(1) if deployment else "unknown"


def _chat_reply(body: Mapping[str, Any]) -> str:
    return echo_reply(_last_user_text(body.get("messages")))


def _chat_chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> Any:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**base, "choices": [choice]}


def _chat_base(req: Recorded, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{req.index}",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": _model_of(req, body),
        "system_fingerprint": "fp_fake",
    }


def _chat_completion(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    reply = _chat_reply(body)
    usage = _usage(_all_text_words(body.get("messages")), _words(reply))
    if body.get("stream"):
        return _Reply(headers=SSE_HEADERS, events=_chat_events(req, body, usage))
    message = {"role": "assistant", "content": reply, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    base = _chat_base(req, body)
    return _json_reply({**base, "object": "chat.completion", "choices": [choice], "usage": usage})


def _chat_events(req: Recorded, body: Mapping[str, Any], usage: dict[str, int]) -> list[Any]:
    """Role chunk, one chunk per word, finish chunk, then (if asked) a usage chunk."""
    base = _chat_base(req, body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if include_usage:
        base["usage"] = None
    events = [_chat_chunk(base, {"role": "assistant", "content": ""})]
    events += [_chat_chunk(base, {"content": piece}) for piece in _pieces(_chat_reply(body))]
    events.append(_chat_chunk(base, {}, "stop"))
    if include_usage:
        events.append({**base, "choices": [], "usage": usage})
    return events


def _endless_chat_chunks(req: Recorded) -> Iterator[Any]:
    """The chat stream for ``req`` without its end, followed by ``" tickN"`` chunks forever."""
    body = req.json if isinstance(req.json, dict) else {}
    base = _chat_base(req, body)
    yield _chat_chunk(base, {"role": "assistant", "content": ""})
    for piece in _pieces(_chat_reply(body)):
        yield _chat_chunk(base, {"content": piece})
    for tick in itertools.count():
        yield _chat_chunk(base, {"content": f" tick{tick}"})


def _text_completion(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = next((p for p in prompt if isinstance(p, str)), "")
    text = echo_reply(str(prompt))
    usage = _usage(_words(str(prompt)), _words(text))
    base = {
        "id": f"cmpl-fake-{req.index}", "object": "text_completion",
        "created": CREATED, "model": _model_of(req, body),
    }  # fmt: skip
    if not body.get("stream"):
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return _json_reply({**base, "choices": [choice], "usage": usage})

    def chunk(piece: str, finish: str | None = None) -> Any:
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    events = [chunk(piece) for piece in _pieces(text)] + [chunk("", "stop")]
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append({**base, "choices": [], "usage": usage})
    return _Reply(headers=SSE_HEADERS, events=events)


def _embedding_inputs(raw: Any) -> list[str]:
    """Inputs as strings; token arrays are keyed by their JSON text."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [json.dumps(raw)]
    if isinstance(raw, list):
        return [x if isinstance(x, str) else json.dumps(x) for x in raw]
    return []


def _embeddings(req: Recorded, body: Mapping[str, Any], dim: int) -> _Reply:
    """Vectors from ``fake_embedding``; honours ``dimensions`` and base64 encoding."""
    inputs = _embedding_inputs(body.get("input"))
    size = int(body.get("dimensions") or dim)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i, text in enumerate(inputs):
        vector: Any = fake_embedding(text, size)
        if as_base64:
            vector = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(_words(t) for t in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    model = _model_of(req, body)
    return _json_reply({"object": "list", "data": data, "model": model, "usage": usage})


def _images(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    prompt = str(body.get("prompt", ""))
    key = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    items: list[dict[str, str]] = []
    for i in range(int(body.get("n") or 1)):
        if body.get("response_format") == "b64_json":
            items.append({"b64_json": base64.b64encode(f"fake-png:{prompt}".encode()).decode()})
        else:
            items.append({"url": f"https://images.fake-upstream.test/{key}-{i}.png"})
    return _json_reply({"created": CREATED, "data": items})


def _speech(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    audio = b"ID3fake-audio:" + str(body.get("input", "")).encode()
    return _Reply(200, {"content-type": "audio/mpeg"}, audio)


def _transcription(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    """``transcribed <filename> (<n> bytes)``; plain text for text/srt/vtt formats."""
    parts = req.form()
    upload = next((p for p in parts if p.filename is not None), None)
    fields = {p.name: p.data.decode("utf-8", "replace") for p in parts if p.filename is None}
    if upload is None:
        text = "transcribed nothing (0 bytes)"
    else:
        text = f"transcribed {upload.filename} ({len(upload.data)} bytes)"
    if fields.get("response_format") in ("text", "srt", "vtt"):
        return _Reply(200, {"content-type": "text/plain; charset=utf-8"}, text.encode())
    return _json_reply({"text": text})


_MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent",
    "sexual", "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip


def _moderations(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    """Flags (as ``violence``) exactly the inputs that contain ``flag-me``."""
    raw = body.get("input", "")
    inputs = [raw] if isinstance(raw, str) else [_text_of([x]) or str(x) for x in raw or []]
    results = []
    for text in inputs:
        flagged = "flag-me" in text
        categories = {c: flagged and c == "violence" for c in _MODERATION_CATEGORIES}
        scores = {c: 0.99 if hit else 0.01 for c, hit in categories.items()}
        results.append({"flagged": flagged, "categories": categories, "category_scores": scores})
    model = _model_of(req, body)
    return _json_reply({"id": f"modr-fake-{req.index}", "model": model, "results": results})


def _rerank(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    """Cohere-shaped; score = share of query words present in the document."""
    query = set(str(body.get("query", "")).lower().split())
    documents = body.get("documents") or []
    results = []
    for index, doc in enumerate(documents):
        text = doc.get("text", "") if isinstance(doc, dict) else str(doc)
        overlap = len(query & set(text.lower().split()))
        score = round(overlap / len(query), 4) if query else 0.0
        results.append({"index": index, "relevance_score": score})
    results.sort(key=lambda r: (-r["relevance_score"], r["index"]))
    top_n = body.get("top_n")
    if isinstance(top_n, int):
        results = results[:top_n]
    meta = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    return _json_reply({"id": f"rerank-fake-{req.index}", "results": results, "meta": meta})


def _responses(req: Recorded, body: Mapping[str, Any]) -> _Reply:
    """Minimal non-streaming Responses API object with one output_text message."""
    raw = body.get("input", "")
    text = echo_reply(_last_user_text(raw))
    content = [{"type": "output_text", "text": text, "annotations": []}]
    message = {
        "type": "message", "id": f"msg_fake{req.index}", "status": "completed",
        "role": "assistant", "content": content,
    }  # fmt: skip
    prompt = _all_text_words(raw) if isinstance(raw, list) else _words(str(raw))
    usage = {"input_tokens": prompt, "output_tokens": _words(text)}
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return _json_reply({
        "id": f"resp_fake{req.index}", "object": "response", "created_at": CREATED,
        "status": "completed", "model": _model_of(req, body), "output": [message],
        "usage": usage, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "tools": [], "tool_choice": "auto",
        "parallel_tool_calls": True,
    })  # fmt: skip


def _echo(req: Recorded) -> _Reply:
    """Generic fallback for forward-only routes (/files, /batches, /assistants, ...)."""
    payload = {
        "object": "echo", "method": req.method, "path": req.path,
        "query": req.query, "body": req.json,
    }  # fmt: skip
    return _json_reply(payload)


# --------------------------------------------------------------------------- connection


class _ClientGone(Exception):
    """The client closed the connection while the server had more to send."""


class _BadRequest(Exception):
    """The bytes received are not a request we can parse."""


class _Connection:
    """One accepted socket: buffered request reading, response writing, EOF watching."""

    def __init__(self, ident: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.ident = ident
        self.reader = reader
        self.writer = writer
        self.task = asyncio.current_task()
        self.buffer = bytearray()
        self.current: Recorded | None = None
        self.phase: DisconnectPhase = "waiting"
        self.events_sent = 0
        self._watch: asyncio.Task[None] | None = None

    # reading ---------------------------------------------------------------

    async def _fill(self) -> bool:
        """Read more bytes into the buffer; False on EOF."""
        data = await self.reader.read(65536)
        self.buffer += data
        return bool(data)

    async def read_line(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > MAX_LINE:
                raise _BadRequest("line too long")
            if not await self._fill():
                raise ConnectionResetError("EOF inside a request")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        return line.removesuffix(b"\r")

    async def read_exact(self, size: int) -> bytes:
        if size > MAX_BODY:
            raise _BadRequest("body too large")
        while len(self.buffer) < size:
            if not await self._fill():
                raise ConnectionResetError("EOF inside a body")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_text = (await self.read_line()).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest(f"bad chunk size {size_text!r}") from None
            if size == 0:
                break
            body += await self.read_exact(size)
            if await self.read_line():
                raise _BadRequest("chunk not followed by CRLF")
        while await self.read_line():  # trailer fields, ignored
            pass
        return bytes(body)

    async def at_request_start(self) -> bool:
        """Wait for the next request; False when the client closed an idle connection."""
        while True:
            del self.buffer[: len(self.buffer) - len(self.buffer.lstrip(b"\r\n"))]
            if self.buffer:
                return True
            if not await self._fill():
                return False

    # writing ---------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise _ClientGone(str(exc)) from exc

    async def send_head(self, status: int, headers: Mapping[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def abort(self, reset: bool = False) -> None:
        """Drop the socket without a clean end; ``reset`` sends a TCP RST instead of FIN."""
        sock = self.writer.get_extra_info("socket")
        if reset and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    # noticing the client going away ----------------------------------------

    async def _wait_for_eof(self) -> None:
        while await self._fill():
            pass

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """While inside, read ahead in the background to notice the client closing."""
        self._watch = asyncio.create_task(self._wait_for_eof())
        try:
            yield
        finally:
            watch, self._watch = self._watch, None
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await watch

    async def pause(self, seconds: float) -> None:
        """Sleep, but raise ``_ClientGone`` as soon as the client closes (needs ``watching``)."""
        assert self._watch is not None, "pause() outside watching()"
        done, _ = await asyncio.wait({self._watch}, timeout=seconds)
        if done:
            raise _ClientGone("client closed the connection")

    async def until_client_gone(self) -> None:
        """Stall until the client closes; then raise ``_ClientGone``."""
        assert self._watch is not None, "until_client_gone() outside watching()"
        await asyncio.wait({self._watch})
        raise _ClientGone("client closed the connection")

    # request ---------------------------------------------------------------

    async def read_request(self) -> tuple[str, str, str, dict[str, str], bytes] | None:
        """(method, target, version, headers, body) of the next request, None on idle EOF."""
        if not await self.at_request_start():
            return None
        method, target, version = self._parse_request_line(await self.read_line())
        headers: dict[str, str] = {}
        while line := await self.read_line():
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise _BadRequest(f"bad header line {line!r}")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if headers.get("expect", "").lower() == "100-continue":
            await self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, target, version, headers, await self._read_body(headers)

    @staticmethod
    def _parse_request_line(line: bytes) -> tuple[str, str, str]:
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(f"bad request line {line!r}")
        return parts[0], parts[1], parts[2]

    async def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await self.read_chunked()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest("bad content-length") from None
        return await self.read_exact(length)


# --------------------------------------------------------------------------- server


class FakeUpstream:
    """A controllable OpenAI-compatible upstream on 127.0.0.1 (see module docstring).

    Use as a context manager (or ``start()`` / ``stop()``). All public methods and
    attributes are safe to use from any thread while the server runs.
    """

    def __init__(
        self,
        *,
        models: Iterable[str] = DEFAULT_MODELS,
        embedding_dim: int = 8,
        stream_delay: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.models = tuple(models)
        self.embedding_dim = embedding_dim
        self.stream_delay = stream_delay  # seconds between SSE events of default streams
        self.host = host
        self._cond = threading.Condition()
        self._requests: list[Recorded] = []
        self._behaviours: list[Behaviour] = []
        self._disconnects: list[Disconnect] = []
        self._connections_opened = 0
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    # lifecycle ---------------------------------------------------------------

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeUpstream:
        """Start the loop thread and listen on a free port; returns self."""
        if self._loop is not None:
            raise RuntimeError("FakeUpstream already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_run_loop, args=(loop,), name="fake-upstream", daemon=True)
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=5)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then end the loop thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            self._loop = self._thread = None

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self.host, 0)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        tasks = [c.task for c in connections if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in connections:
            conn.writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    # addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` — what an OpenAI client wants as base URL."""
        return f"{self.root_url}/v1"

    def url(self, path: str) -> str:
        """Absolute URL for ``path`` (e.g. ``"/v1/files"``)."""
        return self.root_url + ("" if path.startswith("/") else "/") + path

    # observations --------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """Snapshot of every request received so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def last_request(self) -> Recorded:
        with self._cond:
            if not self._requests:
                raise AssertionError("the fake upstream received no request")
            return self._requests[-1]

    @property
    def disconnects(self) -> list[Disconnect]:
        """Snapshot of the client disconnects noticed while a response was pending."""
        with self._cond:
            return list(self._disconnects)

    @property
    def connections_opened(self) -> int:
        """Number of TCP connections accepted so far."""
        with self._cond:
            return self._connections_opened

    def wait_for_requests(self, count: int = 1, timeout: float = 2.0) -> bool:
        """Block until at least ``count`` requests were recorded; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def wait_for_disconnect(self, timeout: float = 2.0, count: int = 1) -> bool:
        """Block until at least ``count`` disconnects were noticed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._disconnects) >= count, timeout)

    # scripting ---------------------------------------------------------------

    def behave(
        self,
        kind: BehaviourKind,
        *,
        times: int | None = None,
        match: str | None = None,
        **options: Any,
    ) -> Behaviour:
        """Script the answer to the next ``times`` requests (every one if None).

        ``match`` restricts it to requests whose path contains that substring.
        Behaviours queue up: a request uses the first still-active matching one,
        and falls back to the default OpenAI-like answer when none applies.
        """
        allowed = BEHAVIOUR_OPTIONS.get(kind)
        if allowed is None:
            raise ValueError(f"unknown behaviour kind {kind!r}")
        unknown = set(options) - allowed
        if unknown:
            raise TypeError(f"behaviour {kind!r} takes no option(s) {sorted(unknown)}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        behaviour = Behaviour(kind, dict(options), times, match)
        with self._cond:
            self._behaviours.append(behaviour)
        return behaviour

    def clear_behaviours(self) -> None:
        """Forget every scripted behaviour; back to default answers."""
        with self._cond:
            self._behaviours.clear()

    def reset(self) -> None:
        """Forget behaviours, recorded requests and disconnects (counters keep running)."""
        with self._cond:
            self._behaviours.clear()
            self._requests.clear()
            self._disconnects.clear()

    def _take_behaviour(self, path: str) -> Behaviour | None:
        with self._cond:
            for behaviour in self._behaviours:
                if behaviour.match is None or behaviour.match in path:
                    behaviour.hits += 1
                    if behaviour.remaining is not None:
                        behaviour.remaining -= 1
                        if behaviour.remaining == 0:
                            self._behaviours.remove(behaviour)
                    return behaviour
        return None

    # connection handling --------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with self._cond:
            self._connections_opened += 1
            conn = _Connection(self._connections_opened, reader, writer)
        self._connections.add(conn)
        try:
            await self._serve(conn)
        except _ClientGone:
            self._note_disconnect(conn)
        except _BadRequest as exc:
            with contextlib.suppress(_ClientGone):
                await self._send_reply(conn, _json_reply(_error_body(400, str(exc)), 400), False)
        except (ConnectionError, OSError):
            pass  # the client broke the connection mid-request; nothing to answer
        except asyncio.CancelledError:
            # stop() cancels us. Ending normally matters: on Python 3.11 the callback
            # of start_server calls task.exception() and logs an error for cancelled tasks.
            pass
        finally:
            self._connections.discard(conn)
            writer.close()

    async def _serve(self, conn: _Connection) -> None:
        """Answer requests on one connection until either side ends it."""
        while True:
            conn.current = None
            raw = await conn.read_request()
            if raw is None:
                return
            req = self._record(conn.ident, *raw)
            conn.current, conn.phase, conn.events_sent = req, "waiting", 0
            keep_alive = _wants_keep_alive(req.http_version, req.headers)
            if not await self._dispatch(conn, req, keep_alive):
                return

    def _record(
        self, conn_id: int, method: str, target: str, version: str,
        headers: dict[str, str], body: bytes,
    ) -> Recorded:  # fmt: skip
        split = urlsplit(target)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self._cond:
            req = Recorded(
                index=len(self._requests),
                connection=conn_id,
                method=method,
                target=target,
                path=split.path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers=headers,
                body=body,
                json=parsed,
                http_version=version,
            )
            self._requests.append(req)
            self._cond.notify_all()
        return req

    def _note_disconnect(self, conn: _Connection) -> None:
        if conn.current is None:
            return
        event = Disconnect(
            conn.ident, conn.current.index, conn.current.path, conn.phase,
            conn.events_sent, time.monotonic(),
        )  # fmt: skip
        with self._cond:
            self._disconnects.append(event)
            self._cond.notify_all()

    # dispatch ----------------------------------------------------------------

    async def _dispatch(self, conn: _Connection, req: Recorded, keep_alive: bool) -> bool:
        """Answer one request; returns whether the connection stays open."""
        behaviour = self._take_behaviour(req.path)
        if behaviour is None:
            return await self._send_reply(conn, self._default_reply(req), keep_alive)
        opts = behaviour.options
        match behaviour.kind:
            case "status":
                return await self._send_reply(conn, _status_reply(opts), keep_alive)
            case "invalid_json":
                body = opts.get("body", DEFAULT_INVALID_JSON)
                body = body.encode() if isinstance(body, str) else body
                reply = _Reply(opts.get("status", 200), {"content-type": "application/json"}, body)
                return await self._send_reply(conn, reply, keep_alive)
            case "slow":
                async with conn.watching():
                    await conn.pause(float(opts.get("delay", 1.0)))
                return await self._send_reply(conn, self._default_reply(req), keep_alive)
            case "stall_stream":
                return await self._stall_stream(conn, req, int(opts.get("n", 1)))
            case "close_mid_stream":
                n, reset = int(opts.get("n", 1)), bool(opts.get("reset", False))
                return await self._close_mid_stream(conn, req, n, reset)
            case "close_before_response":
                return False
            case "garbage":
                await conn.send(opts.get("data", DEFAULT_GARBAGE))
                return False
            case "stream_forever":
                return await self._stream_forever(conn, req, float(opts.get("interval", 0.05)))
        raise AssertionError(behaviour.kind)

    def _default_reply(self, req: Recorded) -> _Reply:
        """OpenAI-like answer chosen by method and path suffix; echo for anything else."""
        body: dict[str, Any] = req.json if isinstance(req.json, dict) else {}
        path = req.path.rstrip("/")
        if req.method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "fake-upstream"}
                    for m in self.models]  # fmt: skip
            return _json_reply({"object": "list", "data": data})
        if req.method != "POST":
            return _echo(req)
        if path.endswith("/embeddings"):
            return _embeddings(req, body, self.embedding_dim)
        for suffix, build in _POST_ROUTES:
            if path.endswith(suffix):
                return build(req, body)
        return _echo(req)

    # sending -----------------------------------------------------------------

    async def _send_reply(self, conn: _Connection, reply: _Reply, keep_alive: bool) -> bool:
        """Send a plain or SSE reply; returns ``keep_alive``."""
        headers = {**_base_headers(conn, keep_alive), **reply.headers}
        if reply.events is not None:
            frames = [_chunk_frame(_sse(event)) for event in [*reply.events, "[DONE]"]]
            frames[-1] += b"0\r\n\r\n"  # [DONE] and the end of the body leave in one write
            await self._stream_frames(conn, headers, frames, self.stream_delay)
            return keep_alive
        headers["content-length"] = str(len(reply.body))
        await conn.send_head(reply.status, headers)
        conn.phase = "responding"
        if conn.current is None or conn.current.method != "HEAD":
            await conn.send(reply.body)
        return keep_alive

    async def _stream_frames(
        self, conn: _Connection, headers: dict[str, str], frames: Iterable[bytes], delay: float,
    ) -> None:  # fmt: skip
        """Send chunked headers, then each frame in its own write, ``delay`` seconds apart."""
        await conn.send_head(200, {**headers, "transfer-encoding": "chunked"})
        conn.phase = "streaming"
        async with conn.watching():
            for number, frame in enumerate(frames):
                if number:
                    await conn.pause(delay)
                await conn.send(frame)
                conn.events_sent += 1

    async def _stall_stream(self, conn: _Connection, req: Recorded, n: int) -> bool:
        """SSE headers and ``n`` chat chunks, then silence until the client leaves."""
        chunks = itertools.islice(_endless_chat_chunks(req), n)
        await self._stream_frames(conn, _sse_headers(conn), _sse_frames(chunks), 0.0)
        async with conn.watching():
            await conn.until_client_gone()
        return False

    async def _close_mid_stream(
        self, conn: _Connection, req: Recorded, n: int, reset: bool
    ) -> bool:
        """SSE headers and ``n`` chat chunks, then drop the socket (no last chunk)."""
        chunks = itertools.islice(_endless_chat_chunks(req), n)
        await self._stream_frames(conn, _sse_headers(conn), _sse_frames(chunks), 0.0)
        conn.abort(reset)
        return False

    async def _stream_forever(self, conn: _Connection, req: Recorded, interval: float) -> bool:
        """A chat chunk every ``interval`` seconds until the client leaves."""
        chunks = _endless_chat_chunks(req)
        await self._stream_frames(conn, _sse_headers(conn), _sse_frames(chunks), interval)
        return False  # unreachable in practice: the stream only ends by _ClientGone


def _status_reply(opts: Mapping[str, Any]) -> _Reply:
    """Reply of the ``status`` behaviour: raw ``body``, else ``json``, else an OpenAI error."""
    status = int(opts.get("status", 500))
    body = opts.get("body")
    if body is not None:
        raw = body.encode() if isinstance(body, str) else bytes(body)
        kind = opts.get("content_type") or "text/plain; charset=utf-8"
    else:
        payload = opts["json"] if opts.get("json") is not None else _error_body(status)
        raw = json.dumps(payload).encode()
        kind = opts.get("content_type") or "application/json"
    return _Reply(status, {"content-type": kind, **(opts.get("headers") or {})}, raw)


_Builder: TypeAlias = Callable[[Recorded, Mapping[str, Any]], _Reply]
_POST_ROUTES: tuple[tuple[str, _Builder], ...] = (
    ("/chat/completions", _chat_completion),
    ("/completions", _text_completion),
    ("/images/generations", _images),
    ("/audio/speech", _speech),
    ("/audio/transcriptions", _transcription),
    ("/audio/translations", _transcription),
    ("/moderations", _moderations),
    ("/rerank", _rerank),
    ("/responses", _responses),
)


def _base_headers(conn: _Connection, keep_alive: bool) -> dict[str, str]:
    index = conn.current.index if conn.current else -1
    return {
        "server": "fake-upstream",
        "x-fake-upstream-request": str(index),
        "connection": "keep-alive" if keep_alive else "close",
    }


def _sse_frames(events: Iterable[Any]) -> Iterator[bytes]:
    """One HTTP chunk per SSE event, lazily (the event source may be endless)."""
    return (_chunk_frame(_sse(event)) for event in events)


def _sse_headers(conn: _Connection) -> dict[str, str]:
    """Headers of the misbehaving streams: they look like a healthy keep-alive stream."""
    return {**_base_headers(conn, True), **SSE_HEADERS}


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Body of the server thread: run ``loop`` until stopped, then close it."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
