"""Server-sent events in both directions, for stream translators.

`SSEParser` turns upstream bytes, cut anywhere (even mid-line, mid-UTF-8), into
complete events; `chunk_frame` / `DONE` write OpenAI's `data:` frames.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["DONE", "ChunkWriter", "SSEEvent", "SSEParser", "data_frame"]

DONE = b"data: [DONE]\n\n"
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str


class SSEParser:
    """Incremental SSE parser (WHATWG rules: `event:`, `data:` lines joined by `\\n`,
    blank line dispatches, `:` comments ignored, CR/LF/CRLF line ends)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return events
            end, after = cut
            line = self._buffer[:end].decode("utf-8", "replace")
            self._buffer = self._buffer[after:]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def close(self) -> list[SSEEvent]:
        """Flush a last event that was not followed by a blank line."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(SSEEvent(self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """(end of line, start of next line), or None if no complete line yet. A CR at
    the very end may be the first half of CRLF, so it waits for the next byte."""
    for i, byte in enumerate(buffer):
        if byte == 10:  # \n
            return i, i + 1
        if byte == 13:  # \r
            if i + 1 == len(buffer):
                return None
            return i, i + 2 if buffer[i + 1] == 10 else i + 1
    return None


def data_frame(payload: Any) -> bytes:
    return b"data: " + _encode(payload) + b"\n\n"


class ChunkWriter:
    """Writes `chat.completion.chunk` frames with one id, model and creation time."""

    def __init__(self, model: str, chunk_id: str | None = None) -> None:
        self.id = chunk_id or f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return data_frame(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [choice],
                **extra,
            }
        )

    def usage(self, usage: dict[str, Any]) -> bytes:
        return data_frame(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage,
            }
        )
