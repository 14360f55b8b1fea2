"""Replace one top-level string field of a JSON object without re-encoding the rest.

The native Anthropic relay forwards the client's body unchanged except `model`.
Decoding and re-encoding would reformat numbers, escapes and whitespace (and
costs time on megabyte-sized image bodies), so the value is spliced into the
original bytes instead. The scanner jumps from one structural byte to the next
with a regex and skips strings with `bytes.find`, so base64 payloads are passed
over at C speed.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["replace_string_field"]

_STRUCTURAL = re.compile(rb'["{}\[\],]')
_BACKSLASH = 0x5C


def _string_end(raw: bytes, start: int) -> int:
    """Index just past the string starting at `raw[start] == '"'`."""
    i = start + 1
    while True:
        quote = raw.find(b'"', i)
        if quote < 0:
            raise ValueError("unterminated string")
        backslashes = 0
        k = quote - 1
        while raw[k] == _BACKSLASH:
            backslashes += 1
            k -= 1
        if backslashes % 2 == 0:
            return quote + 1
        i = quote + 1


def replace_string_field(raw: bytes, field: str, value: str) -> bytes:
    """`raw` (a valid JSON object) with the top-level string `field` set to `value`.
    A missing field (or a non-string one) is an error: callers validated it before."""
    depth = 0
    expect_key = False
    key: str | None = None
    i = 0
    while True:
        match = _STRUCTURAL.search(raw, i)
        if match is None:
            raise ValueError(f"no string field {field!r} at the top level")
        i = match.start()
        byte = raw[i : i + 1]
        if byte == b'"':
            end = _string_end(raw, i)
            if depth == 1 and expect_key:
                key = msgspec.json.decode(raw[i:end])
                expect_key = False
            elif depth == 1 and key == field:
                return raw[:i] + msgspec.json.encode(value) + raw[end:]
            i = end
            continue
        if byte in (b"{", b"["):
            depth += 1
            expect_key = depth == 1
        elif byte in (b"}", b"]"):
            depth -= 1
        elif depth == 1:  # a comma between top-level members
            expect_key = True
            key = None
        i += 1
