"""Newline-delimited JSON (Ollama's stream format), read incrementally.

Upstream bytes arrive cut anywhere: mid-object, mid-UTF-8 sequence, between the
CR and LF of a CRLF. `NDJSONSplitter` keeps the unfinished tail and yields only
complete lines, decoded. Splitting on the byte `\\n` is safe for UTF-8 because
no multi-byte sequence contains that byte.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tianji.errors import UpstreamProtocolError

__all__ = ["NDJSONSplitter"]


class NDJSONSplitter:
    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Any]:
        """The JSON values of every line completed by `chunk` (blank lines skipped)."""
        self._buffer += chunk
        if b"\n" not in chunk:
            return []
        *lines, self._buffer = self._buffer.split(b"\n")
        return [self._decode(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """The last line, when the stream did not end with a newline."""
        line, self._buffer = self._buffer, b""
        return [self._decode(line)] if line.strip() else []

    def _decode(self, line: bytes) -> Any:
        try:
            return msgspec.json.decode(line)  # surrounding whitespace and a CR are fine
        except msgspec.DecodeError:
            preview = line[:200].decode("utf-8", "replace")
            raise UpstreamProtocolError(
                f"invalid response from {self._provider}: a stream line is not JSON: {preview!r}"
            ) from None
