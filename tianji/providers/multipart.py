"""multipart/form-data encoding for upstream requests (audio, image edits, files)."""

from __future__ import annotations

import secrets

from tianji.providers.base import FormPart

__all__ = ["encode_form"]


def encode_form(parts: list[FormPart]) -> tuple[bytes, str]:
    """Returns (body, content type with boundary)."""
    boundary = "tianji-" + secrets.token_hex(16)
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{_quote(part.name)}"'
        if part.filename is not None:
            disposition += f'; filename="{_quote(part.filename)}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if part.content_type:
            out += f"Content-Type: {part.content_type}\r\n".encode()
        out += b"\r\n" + part.value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _quote(value: str) -> str:
    # RFC 7578 §4.2: quotes and line breaks in names are percent-encoded.
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
