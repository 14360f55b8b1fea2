"""Helpers shared by the provider adapter tests: fixtures, SSE frames, translators
fed in steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tianji.providers import Call, adapter_for

FIXTURES = Path(__file__).resolve().parent.parent / "providers" / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sse_frames(sse: bytes, *, drop: tuple[str, ...] = ()) -> list[Any]:
    """Payloads of the `data:` frames (`[DONE]` as the string), with the `drop` keys
    removed from each object (ids and clocks a translator makes up)."""
    out: list[Any] = []
    for block in sse.decode().split("\n\n"):
        if block.startswith("data: "):
            raw = block[len("data: ") :]
            payload = raw if raw == "[DONE]" else json.loads(raw)
            if isinstance(payload, dict):
                for key in drop:
                    payload.pop(key, None)
            out.append(payload)
    return out


def translate_in_steps(adapter: str, call: Call, data: bytes, step: int) -> bytes:
    """The adapter's stream translator fed `data` in pieces of `step` bytes."""
    translator = adapter_for(adapter).stream_translator(call)
    assert translator is not None
    out = b"".join(translator.feed(data[i : i + step]) for i in range(0, len(data), step))
    return out + translator.close()
