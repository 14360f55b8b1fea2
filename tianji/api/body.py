"""Decode a request body once, and validate the fields tianji needs.

The body is decoded untyped (so unknown fields are forwarded untouched), then
checked against a Struct with msgspec.convert, whose errors carry the JSON path
(`$.messages[0].role`). msgspec Structs cannot keep unknown fields, hence the
two steps; on small bodies both together cost a few microseconds.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from tianji.errors import InvalidRequest

__all__ = ["decode_object", "validate"]

_decoder = msgspec.json.Decoder()
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def decode_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("Request body is empty; expected a JSON object.", code="invalid_json")
    try:
        data = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(
            f"Malformed JSON in request body: {exc}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            f"Request body must be a JSON object, got {type(data).__name__}.", code="invalid_json"
        )
    return data


def validate(data: dict[str, Any], schema: type[msgspec.Struct]) -> None:
    """400 naming the field path when `data` does not fit `schema`."""
    try:
        msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        param = None
        if match:
            param = match.group("path").lstrip(".") or None
            message = message[: match.start()]
        where = f" at {param}" if param else ""
        raise InvalidRequest(f"Invalid request body{where}: {message}", param=param) from None
