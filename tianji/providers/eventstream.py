"""Incremental decoder of AWS event-stream frames (`application/vnd.amazon.eventstream`).

Bedrock ConverseStream and SageMaker response streams send binary frames:

    total length u32 | headers length u32 | prelude CRC32 u32 | headers | payload | CRC32 u32

(big-endian; the message CRC covers everything before it). Each header is
name length u8 | name | type u8 | value, where the value's size depends on its
type. Both CRCs are checked, so a corrupted or truncated stream is an
UpstreamProtocolError rather than a garbled answer.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from tianji.errors import UpstreamProtocolError

__all__ = ["EventStreamDecoder", "Frame", "HeaderValue"]

HeaderValue = bool | int | bytes | str | datetime | uuid.UUID

_PRELUDE = 12
_CRC = 4
# Limits of the format (AWS SDKs enforce the same), so a corrupt length cannot
# make us buffer gigabytes before the CRC check fails.
_MAX_MESSAGE = 16 * 1024 * 1024 + 128 * 1024 + _PRELUDE + _CRC
_MAX_HEADERS = 128 * 1024
# Type code -> (struct format of a fixed-size value, or None if u16-length-prefixed).
_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


@dataclass(frozen=True, slots=True)
class Frame:
    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str:
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""

    @property
    def message_type(self) -> str:
        """`event`, `exception` (modelled error) or `error` (stream-level error)."""
        return self.header(":message-type") or "event"

    @property
    def event_type(self) -> str:
        return self.header(":event-type")


class EventStreamDecoder:
    """Feed bytes cut anywhere; get back each complete, CRC-checked frame once."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: UpstreamProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at the end = truncated)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Complete frames so far. A corrupt frame raises UpstreamProtocolError; if good
        frames came before it in the same bytes, they are returned first and the error
        is raised by the next call (so no valid output is lost)."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames: list[Frame] = []
        try:
            while len(self._buffer) >= _PRELUDE:
                total, headers_length = _check_prelude(self._buffer)
                if len(self._buffer) < total:
                    break
                message = bytes(self._buffer[:total])
                del self._buffer[:total]
                frames.append(_frame(message, headers_length))
        except UpstreamProtocolError as exc:
            if not frames:
                raise
            self._error = exc
        return frames


def _check_prelude(buffer: bytearray) -> tuple[int, int]:
    total, headers_length, crc = struct.unpack_from(">III", buffer, 0)
    if zlib.crc32(buffer[:8]) != crc:
        raise UpstreamProtocolError("invalid event stream from upstream: prelude CRC mismatch")
    if headers_length > _MAX_HEADERS or not (_PRELUDE + headers_length + _CRC <= total):
        raise UpstreamProtocolError("invalid event stream from upstream: bad frame lengths")
    if total > _MAX_MESSAGE:
        raise UpstreamProtocolError("invalid event stream from upstream: frame too large")
    return total, headers_length


def _frame(message: bytes, headers_length: int) -> Frame:
    (crc,) = struct.unpack_from(">I", message, len(message) - _CRC)
    if zlib.crc32(message[:-_CRC]) != crc:
        raise UpstreamProtocolError("invalid event stream from upstream: message CRC mismatch")
    headers_end = _PRELUDE + headers_length
    headers = _headers(message[_PRELUDE:headers_end])
    return Frame(headers, message[headers_end:-_CRC])


def _headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    at = 0
    try:
        while at < len(data):
            name_length = data[at]
            name = data[at + 1 : at + 1 + name_length].decode()
            at += 1 + name_length
            value, at = _value(data, data[at], at + 1)
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, ValueError):
        raise UpstreamProtocolError(
            "invalid event stream from upstream: malformed headers"
        ) from None
    if at != len(data):
        raise UpstreamProtocolError("invalid event stream from upstream: malformed headers")
    return headers


def _value(data: bytes, kind: int, at: int) -> tuple[HeaderValue, int]:
    """Decode one header value of type `kind` starting at `at`; returns (value, next offset)."""
    if kind in (0, 1):  # boolean true / false: no value bytes
        return kind == 0, at
    fixed = _FIXED.get(kind)
    if fixed is not None:
        size = struct.calcsize(fixed)
        (number,) = struct.unpack_from(fixed, data, at)
        if kind == 8:  # timestamp: milliseconds since the epoch
            return datetime.fromtimestamp(number / 1000, UTC), at + size
        return number, at + size
    if kind == 9:
        raw = data[at : at + 16]
        if len(raw) != 16:
            raise ValueError("short uuid")
        return uuid.UUID(bytes=raw), at + 16
    if kind in (6, 7):  # byte array / string: u16 length prefix
        (length,) = struct.unpack_from(">H", data, at)
        raw = data[at + 2 : at + 2 + length]
        if len(raw) != length:
            raise ValueError("short value")
        return (raw.decode() if kind == 7 else raw), at + 2 + length
    raise ValueError(f"unknown header type {kind}")
