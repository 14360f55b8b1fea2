"""The AWS event-stream decoder: any split gives the same frames, as botocore reads them."""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import UTC, datetime

import pytest
from botocore.eventstream import EventStreamBuffer

from tests.providers.fixtures.bedrock_eventstream import (
    FIXTURES,
    encode_frame,
    encode_header,
    load,
)
from tianji.errors import UpstreamProtocolError
from tianji.providers.eventstream import EventStreamDecoder, Frame


def _decode(data: bytes, size: int) -> list[Frame]:
    decoder = EventStreamDecoder()
    frames: list[Frame] = []
    for at in range(0, len(data), size):
        frames += decoder.feed(data[at : at + size])
    assert decoder.pending == 0
    return frames


def _botocore(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(message.headers), message.payload) for message in buffer]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_frames_match_botocore_in_any_split(name: str) -> None:
    data = load(name)
    # The fixture on disk is what the encoder writes today (regenerate if this fails).
    assert data == FIXTURES[name]()
    whole = _decode(data, len(data))
    reference = _botocore(data)
    assert [(f.headers, f.payload) for f in whole] == reference
    assert len(whole) >= 3
    for size in (1, 2, 7, 13, 64):
        assert _decode(data, size) == whole


def test_every_header_type_is_decoded() -> None:
    when = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = [
        encode_header("t", True),
        encode_header("f", False),
        encode_header("byte", -3, kind=2),
        encode_header("short", -300, kind=3),
        encode_header("int", 70000, kind=4),
        encode_header("long", 2**40, kind=5),
        encode_header("bytes", b"\x00\xff"),
        encode_header(":event-type", "chunk"),
        encode_header("time", when),
        encode_header("id", ident),
    ]
    data = encode_frame(headers, b"payload") + encode_frame({":message-type": "event"}, b"")
    frames = _decode(data, 1)
    assert frames[0].headers == {
        "t": True,
        "f": False,
        "byte": -3,
        "short": -300,
        "int": 70000,
        "long": 2**40,
        "bytes": b"\x00\xff",
        ":event-type": "chunk",
        "time": when,
        "id": ident,
    }
    assert frames[0].event_type == "chunk" and frames[0].payload == b"payload"
    assert frames[1].payload == b"" and frames[1].message_type == "event"
    # botocore agrees on the values it represents the same way.
    parsed = _botocore(data)[0][0]
    assert {k: parsed[k] for k in ("t", "f", "byte", "short", "int", "long", "bytes")} == {
        k: frames[0].headers[k] for k in ("t", "f", "byte", "short", "int", "long", "bytes")
    }


def test_bad_prelude_crc_is_a_protocol_error() -> None:
    frame = bytearray(encode_frame({":event-type": "x"}, b"{}"))
    frame[9] ^= 0x01  # inside the prelude CRC
    with pytest.raises(UpstreamProtocolError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(frame))


def test_bad_message_crc_is_a_protocol_error_even_one_byte_at_a_time() -> None:
    frame = bytearray(encode_frame({":event-type": "x"}, b'{"text":"hi"}'))
    frame[-6] ^= 0x20  # a payload byte: only the message CRC can notice
    decoder = EventStreamDecoder()
    with pytest.raises(UpstreamProtocolError, match="message CRC"):
        for byte in bytes(frame):
            decoder.feed(bytes([byte]))


def test_good_frames_before_a_corrupt_one_are_delivered_first() -> None:
    good = encode_frame({":event-type": "a"}, b"1")
    bad = bytearray(encode_frame({":event-type": "b"}, b"2"))
    bad[-1] ^= 0xFF
    decoder = EventStreamDecoder()
    assert [f.event_type for f in decoder.feed(good + bytes(bad))] == ["a"]
    with pytest.raises(UpstreamProtocolError, match="message CRC"):
        decoder.feed(b"")


def test_impossible_lengths_are_rejected_before_buffering() -> None:
    prelude = struct.pack(">II", 10, 0)  # shorter than a prelude plus CRC
    with pytest.raises(UpstreamProtocolError, match="lengths"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
    huge = struct.pack(">II", 1 << 30, 0)
    with pytest.raises(UpstreamProtocolError, match="too large"):
        EventStreamDecoder().feed(huge + struct.pack(">I", zlib.crc32(huge)))


def test_truncated_stream_leaves_pending_bytes() -> None:
    data = encode_frame({":event-type": "x"}, b"{}")
    decoder = EventStreamDecoder()
    assert decoder.feed(data + data[:5]) != []
    assert decoder.pending == 5
