"""tianji.tokens: offline tiktoken cache, model -> tokenizer mapping, chat token counts."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import math
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.registry

from tianji import tokens
from tianji.tokens import (
    ENCODINGS,
    TokenCount,
    TokenizerUnavailable,
    count_messages,
    count_text,
    encoding_for_model,
    prepare_offline_cache,
    token_counter,
)

# The OpenAI cookbook's example ("How to count tokens with tiktoken"); the cookbook reports
# 129 prompt tokens from the API for gpt-3.5-turbo / gpt-4 and 124 for gpt-4o / gpt-4o-mini.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


def _key(name: str) -> str:
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    return hashlib.sha1(url.encode()).hexdigest()


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TIKTOKEN_CACHE_DIR, a private XDG cache, and no encodings loaded anywhere."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        monkeypatch.setenv(var, "")  # records the original value, restored after the test
        monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "_env_set_by_us", None)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return tmp_path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to reach the network is recorded and fails."""
    attempts: list[object] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    saved = os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    try:
        return tokens._prepare(tmp_path_factory.mktemp("tiktoken"), ENCODINGS)
    finally:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        if saved is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved
        tokens._env_set_by_us = None


@pytest.fixture
def cached(monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> None:
    """Encodings available from a session-wide verified cache (as if the user set it)."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(shared_cache))
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "_env_set_by_us", None)


def enc(name: str) -> tiktoken.Encoding:
    return tiktoken.get_encoding(name)


# --- offline cache ---------------------------------------------------------------------


def test_constants_match_installed_tiktoken() -> None:
    spec = importlib.util.find_spec("tiktoken_ext.openai_public")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).read_text()
    for name in ENCODINGS:
        url = tokens._URL.format(name)
        at = source.index(f'"{url}"')
        assert f'expected_hash="{tokens._SHA256[name]}"' in source[at : at + 200], name


def test_prepare_loads_both_encodings_without_network(
    fresh: Path, no_network: list[object]
) -> None:
    target = fresh / "cache"
    assert prepare_offline_cache(target) == target
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(target)
    for name in ENCODINGS:
        data = (target / _key(name)).read_bytes()
        assert hashlib.sha256(data).hexdigest() == tokens._SHA256[name]
        assert not list(target.glob("*.tmp"))
        assert tiktoken.get_encoding(name).name == name
    assert enc("cl100k_base").encode("hello world") == [15339, 1917]
    assert enc("o200k_base").encode("hello world") == [24912, 2375]
    assert no_network == []


def test_lazy_load_without_network(fresh: Path, no_network: list[object]) -> None:
    assert encoding_for_model("gpt-4o")[0] == "o200k_base"
    assert encoding_for_model("gpt-4")[0] == "cl100k_base"
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(fresh / "xdg" / "tianji" / "tiktoken")
    assert no_network == []


def test_user_cache_dir_is_kept_and_filled(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = fresh / "user"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(user))
    assert prepare_offline_cache(fresh / "mine") == user
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(user)
    for name in ENCODINGS:
        assert (user / _key(name)).is_file()
        assert (fresh / "mine" / _key(name)).is_file()
    assert prepare_offline_cache() == user


def test_our_own_setting_can_be_retargeted(fresh: Path) -> None:
    prepare_offline_cache(fresh / "a")
    assert prepare_offline_cache(fresh / "b") == fresh / "b"
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(fresh / "b")
    assert prepare_offline_cache() == fresh / "b"  # the default keeps the chosen dir


def test_existing_good_file_kept_bad_file_replaced(fresh: Path) -> None:
    target = prepare_offline_cache(fresh / "c")
    good, bad = target / _key("cl100k_base"), target / _key("o200k_base")
    before = good.stat().st_mtime_ns, good.stat().st_ino
    bad.write_bytes(b"garbage")
    prepare_offline_cache(target)
    assert (good.stat().st_mtime_ns, good.stat().st_ino) == before
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == tokens._SHA256["o200k_base"]


def test_expected_hash_mismatch(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tokens._SHA256, "cl100k_base", "0" * 64)
    with pytest.raises(TokenizerUnavailable, match=r"cl100k_base\.tiktoken\.gz"):
        prepare_offline_cache(fresh / "c")
    assert not (fresh / "c" / _key("cl100k_base")).exists()


@pytest.mark.parametrize("corrupt", ["edited", "truncated", "missing"])
def test_tampered_vocabulary(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object], corrupt: str
) -> None:
    vocab = fresh / "vocab"
    shutil.copytree(tokens._vocab_dir(), vocab)
    gz = vocab / "o200k_base.tiktoken.gz"
    if corrupt == "edited":
        gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes()).replace(b" 1\n", b" 2\n")))
    elif corrupt == "truncated":
        gz.write_bytes(gz.read_bytes()[:1000])
    else:
        gz.unlink()
    monkeypatch.setattr(tokens, "_vocab_dir", lambda: vocab)
    with pytest.raises(TokenizerUnavailable, match=r"o200k_base\.tiktoken\.gz"):
        prepare_offline_cache(fresh / "c")
    # counting degrades to the estimate for o200k models, without trying a download
    assert encoding_for_model("gpt-4o") == ("chars/4", None)
    assert count_text("abcdefghi", "gpt-4o") == 3
    result = token_counter("gpt-4o", prompt="abcdefghi")
    assert (result.model_used, result.tokenizer_type) == ("chars/4", "fallback_estimate")
    assert encoding_for_model("gpt-4")[0] == "cl100k_base"  # its file is fine
    assert no_network == []


def test_concurrent_first_use_loads_once(fresh: Path) -> None:
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(encoding_for_model("gpt-4o")[1]))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and results[0] is not None
    assert all(r is results[0] for r in results)


# --- model -> tokenizer ----------------------------------------------------------------

MAPPING = {
    "gpt-4o": "o200k_base",
    "gpt-4o-mini": "o200k_base",
    "openai/gpt-4o-mini": "o200k_base",
    "azure/gpt-4o": "o200k_base",
    "GPT-4O": "o200k_base",
    "ft:gpt-4o-mini:org::abc": "o200k_base",
    "gpt-4.1-mini": "o200k_base",
    "gpt-5": "o200k_base",
    "o1-mini": "o200k_base",
    "o3": "o200k_base",
    "o4-mini": "o200k_base",
    "chatgpt-4o-latest": "o200k_base",
    "gpt-oss-120b": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-4-turbo": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "text-embedding-3-small": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
    "claude-3-5-sonnet": "cl100k_base",
    "anthropic/claude-3-5-sonnet-20241022": "cl100k_base",
    "gemini/gemini-1.5-pro": "cl100k_base",
    "meta-llama/Llama-3-70b": "cl100k_base",
    "": "cl100k_base",
}


@pytest.mark.parametrize(("model", "expected"), MAPPING.items())
def test_model_to_tokenizer(cached: None, model: str, expected: str) -> None:
    name, encoding = encoding_for_model(model)
    assert name == expected
    assert encoding is not None and encoding.name == expected


# gpt-oss is left out: tiktoken names it o200k_harmony, the same BPE plus chat special tokens.
NOT_OPENAI = ("gpt-oss", "anthropic/", "gemini/", "meta-llama/", "claude")
OPENAI = [m for m in MAPPING if m and not m.startswith(NOT_OPENAI)]


@pytest.mark.parametrize("model", OPENAI)
def test_mapping_agrees_with_tiktoken(cached: None, model: str) -> None:
    official = tiktoken.encoding_for_model(model.rsplit("/", 1)[-1].lower()).name
    assert encoding_for_model(model)[0] == official


# --- counting --------------------------------------------------------------------------


def test_known_values(cached: None) -> None:
    assert count_text("hello world", "gpt-4") == 2
    assert count_text("hello world", "gpt-4o") == 2
    assert count_text("tiktoken is great!", "gpt-4") == 6  # tiktoken's README example
    assert count_messages(COOKBOOK, "gpt-4") == 129
    assert count_messages(COOKBOOK, "gpt-3.5-turbo") == 129
    assert count_messages(COOKBOOK, "gpt-4o") == 124
    assert count_messages(COOKBOOK, "gpt-4o-mini") == 124


def cookbook_formula(messages: list[dict[str, str]], name: str) -> int:
    encoding = enc(name)
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(encoding.encode(value)) + (1 if key == "name" else 0)
    return total


@pytest.mark.parametrize(("model", "name"), [("gpt-4", "cl100k_base"), ("gpt-4o", "o200k_base")])
def test_count_messages_matches_formula(cached: None, model: str, name: str) -> None:
    assert count_messages(COOKBOOK, model) == cookbook_formula(COOKBOOK, name)
    text = "Quel est le résultat de 2+2 ? 日本語も。 <|endoftext|>"
    assert count_text(text, model) == len(enc(name).encode(text, disallowed_special=()))


def test_claude_is_cl100k_estimate(cached: None) -> None:
    assert count_messages(COOKBOOK, "claude-3-5-sonnet") == cookbook_formula(
        COOKBOOK, "cl100k_base"
    )


def n(text: str, name: str = "cl100k_base") -> int:
    return len(enc(name).encode(text))


def test_image_parts(cached: None) -> None:
    url = "data:image/png;base64,AAAA"
    content = [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image_url", "image_url": url},
    ]
    got = count_messages([{"role": "user", "content": content}], "gpt-4")
    expected = 3 + n("user") + n("What is in these images?") + 85 + 3 * 765 + 3
    assert got == expected
    assert tokens.IMAGE_LOW_TOKENS == 85 and tokens.IMAGE_DEFAULT_TOKENS == 765


def test_other_part_types_count_their_json(cached: None) -> None:
    part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    got = count_messages([{"role": "user", "content": [part]}], "gpt-4")
    assert got == 3 + n("user") + n(json.dumps(part)) + 3


def test_tool_calls_and_tools(cached: None) -> None:
    arguments = '{"location": "Paris", "unit": "celsius"}'
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    ]
    expected = (
        3
        + (3 + n("user") + n("Weather in Paris?"))
        + (3 + n("assistant") + n("get_weather") + n(arguments))
        + (3 + n("tool") + n("call_1") + n("18C, sunny"))
    )
    assert count_messages(messages, "gpt-4") == expected
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    assert count_messages(messages, "gpt-4", tools) == expected + n(json.dumps(tools))
    legacy = [{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]
    assert count_messages(legacy, "gpt-4") == 3 + 3 + n("assistant") + n("f") + n("{}")


def test_odd_inputs_do_not_crash(cached: None) -> None:
    assert count_messages([], "gpt-4") == 3
    assert count_messages([{"role": "user", "content": None}], "gpt-4") == 3 + n("user") + 3
    assert count_messages([{"role": "user", "content": 42}], "gpt-4") == 3 + n("user") + n("42") + 3
    odd: list[Any] = [
        {"role": None, "content": [None, 7, "bare string", {"type": "text", "text": None}]},
        {"content": {"nested": [1, 2.5, True]}, "unknown": {"x": object()}, "n": 3},
        {"role": "assistant", "tool_calls": [None, {"function": None}, {"function": {}}]},
        {"role": "assistant", "tool_calls": None, "function_call": "weird"},
        {"role": "user", "content": [{"type": "image_url"}, {"no_type": True}]},
        "not a dict",
        None,
        123,
    ]
    for model in ("gpt-4", "gpt-4o", "claude-3-opus", "x" * 1000):
        assert isinstance(count_messages(odd, model), int)
    assert count_messages(None, "gpt-4") == 3  # type: ignore[arg-type]
    assert count_text("", "gpt-4") == 0


def test_chars_fallback_rounds_up(cached: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tokens._loaded, "cl100k_base", None)
    assert encoding_for_model("gpt-4") == ("chars/4", None)
    for text in ("", "a", "abcd", "abcde", "x" * 401):
        assert count_text(text, "gpt-4") == math.ceil(len(text) / 4)


# --- token_counter ---------------------------------------------------------------------


def test_token_counter_prompt_string(cached: None) -> None:
    assert token_counter("openai/gpt-4o", prompt="hello world") == TokenCount(
        total_tokens=2,
        request_model="openai/gpt-4o",
        model_used="o200k_base",
        tokenizer_type="openai_tokenizer",
    )


def test_token_counter_prompt_list(cached: None) -> None:
    result = token_counter("gpt-4", prompt=["hello world", "tiktoken is great!"])
    assert (result.total_tokens, result.model_used) == (2 + 6, "cl100k_base")
    ids: Any = [15339, 1917, 0]
    assert token_counter("gpt-4", prompt=ids).total_tokens == 3
    assert token_counter("gpt-4", prompt=[]).total_tokens == 0
    assert token_counter("gpt-4").total_tokens == 0


def test_token_counter_messages_and_tools(cached: None) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    result = token_counter("claude-3-5-sonnet", messages=COOKBOOK, prompt="ignored", tools=tools)
    assert result.total_tokens == 129 + n(json.dumps(tools))
    assert (result.request_model, result.model_used) == ("claude-3-5-sonnet", "cl100k_base")
    assert result.tokenizer_type == "openai_tokenizer"
    assert token_counter("gpt-4", prompt="hello world", tools=tools).total_tokens == 2 + n(
        json.dumps(tools)
    )
