"""Anthropic Messages request -> OpenAI chat request, for non-Anthropic deployments.

This is providers.md §3.1 read backwards: Claude Code and the anthropic SDK
speak Anthropic's format, and the chosen deployment speaks OpenAI's (directly,
or through its adapter). Fields a provider cannot take are handled in two ways:
what changes the answer (tools, stop, temperature, ...) goes through the
adapter's unsupported-param rule (400 unless drop_params); what only refines it
(parallel_tool_calls, user, stream usage, reasoning effort) is left out when the
provider's parameter set lacks it.

Extended thinking becomes `reasoning_effort` for OpenAI-style providers; a model
that refuses it (a non-reasoning model) can be given `additional_drop_params:
[reasoning_effort]` on its deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from tianji.compile.model import ProviderKind
from tianji.errors import InvalidRequest

__all__ = ["keeps_native_extras", "openai_messages", "openai_tools", "to_openai_request"]

# Adapters that put the OpenAI body on the wire as it is: Anthropic-only extras
# (cache_control, top_k, thinking blocks) would be rejected there, so they are
# kept only for translating adapters, which map them (providers.md §3.1, §3.3).
_OPENAI_WIRE = frozenset({"openai_compat", "azure", "mock"})
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def keeps_native_extras(provider: ProviderKind) -> bool:
    return provider.adapter not in _OPENAI_WIRE


def to_openai_request(body: dict[str, Any], provider: ProviderKind) -> dict[str, Any]:
    """The OpenAI chat body for an Anthropic Messages body (already validated)."""
    extras = keeps_native_extras(provider)
    supported = provider.params.get("chat")

    def supports(name: str) -> bool:
        return supported is None or name in supported

    out: dict[str, Any] = {"messages": openai_messages(body, extras)}
    out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    if extras and body.get("top_k") is not None:
        out["top_k"] = body["top_k"]
    _add_tools(out, body, extras, supports)
    _add_thinking(out, body.get("thinking"), supports)
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user and supports("user"):
        out["user"] = user
    if body.get("stream"):
        out["stream"] = True
        if supports("stream_options"):
            out["stream_options"] = {"include_usage": True}
    return out


def openai_messages(body: dict[str, Any], extras: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        out.append({"role": "system", "content": _text_content(system, extras, "$.system")})
    for i, message in enumerate(body["messages"]):
        role, content = message["role"], message["content"]
        where = f"$.messages[{i}].content"
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif role == "user":
            out += _user_turn(content, extras, where)
        else:
            out.append(_assistant_turn(content, extras, where))
    return out


def openai_tools(body: dict[str, Any], extras: bool = False) -> list[dict[str, Any]]:
    tools = []
    for i, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise InvalidRequest(
                f"tool type {kind!r} runs on Anthropic's servers and is only available "
                "with Anthropic models",
                param=f"tools[{i}].type",
            )
        function: dict[str, Any] = {
            "name": _field(tool, "name", f"$.tools[{i}]"),
            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        entry: dict[str, Any] = {"type": "function", "function": function}
        if extras and tool.get("cache_control"):
            entry["cache_control"] = tool["cache_control"]
        tools.append(entry)
    return tools


def _add_tools(
    out: dict[str, Any], body: dict[str, Any], extras: bool, supports: Callable[[str], bool]
) -> None:
    tools = openai_tools(body, extras)
    choice = body.get("tool_choice")
    if not tools:  # OpenAI refuses a tool_choice without tools; Anthropic ignores it
        return
    out["tools"] = tools
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "tool":
        out["tool_choice"] = {
            "type": "function",
            "function": {"name": _field(choice, "name", "$.tool_choice")},
        }
    elif kind in _TOOL_CHOICE:
        out["tool_choice"] = _TOOL_CHOICE[kind]
    else:
        raise InvalidRequest(f"unknown tool_choice type {kind!r}", param="tool_choice.type")
    if choice.get("disable_parallel_tool_use") and tools and supports("parallel_tool_calls"):
        out["parallel_tool_calls"] = False


def _add_thinking(out: dict[str, Any], thinking: Any, supports: Callable[[str], bool]) -> None:
    """Extended thinking: passed as is to providers that take `thinking` (Claude on
    other clouds), else as OpenAI's `reasoning_effort` (budgets of §3.1 read back)."""
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return
    if supports("thinking"):
        out["thinking"] = thinking
    elif supports("reasoning_effort"):
        budget = thinking.get("budget_tokens")
        budget = budget if isinstance(budget, int) else 0
        out["reasoning_effort"] = "low" if budget < 2048 else "medium" if budget < 4096 else "high"


def _text_content(content: Any, extras: bool, where: str) -> Any:
    """System prompt or text-only content: one string, or text parts when
    cache_control marks must reach a translating adapter."""
    if isinstance(content, str):
        return content
    parts = [_text_part(block, extras, f"{where}[{i}]") for i, block in enumerate(content)]
    return _collapse(parts)


def _collapse(parts: list[dict[str, Any]]) -> Any:
    """Text-only parts without cache marks become one string: every OpenAI-compatible
    server takes string content, not all take arrays of parts."""
    if all(p["type"] == "text" and len(p) == 2 for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _text_part(block: dict[str, Any], extras: bool, where: str) -> dict[str, Any]:
    if block.get("type") != "text":
        raise InvalidRequest(f"expected a text block at {where}", param=where.lstrip("$."))
    part: dict[str, Any] = {"type": "text", "text": _field(block, "text", where)}
    if extras and block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _user_turn(blocks: list[dict[str, Any]], extras: bool, where: str) -> list[dict[str, Any]]:
    """Tool results become `role: tool` messages first (OpenAI wants them right after
    the assistant's tool calls); the rest of the turn follows as one user message."""
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        at = f"{where}[{i}]"
        kind = block.get("type")
        if kind == "tool_result":
            text, images = _tool_result(block, at)
            tool_messages.append(
                {"role": "tool", "tool_call_id": _field(block, "tool_use_id", at), "content": text}
            )
            parts += images
        elif kind == "text":
            parts.append(_text_part(block, extras, at))
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "document":
            parts.append(_document_part(block, at))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise InvalidRequest(
                f"content block type {kind!r} at {at} is not supported for non-Anthropic models",
                param=at.lstrip("$."),
            )
    if parts:
        tool_messages.append({"role": "user", "content": _collapse(parts)})
    return tool_messages


def _assistant_turn(blocks: list[dict[str, Any]], extras: bool, where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        at = f"{where}[{i}]"
        kind = block.get("type")
        if kind == "text":
            texts.append(_field(block, "text", at))
        elif kind == "tool_use":
            arguments = msgspec.json.encode(block.get("input") or {}).decode()
            function = {"name": _field(block, "name", at), "arguments": arguments}
            calls.append({"id": _field(block, "id", at), "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block)
        # Server-tool blocks (web search results, ...) have no OpenAI form: left out.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    if thinking and extras:
        message["thinking_blocks"] = thinking
    return message


def _tool_result(block: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    content = block.get("content")
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        if part.get("type") == "text":
            texts.append(_field(part, "text", f"{where}.content[{i}]"))
        elif part.get("type") == "image":
            images.append(_image_part(part, f"{where}.content[{i}]"))
    return "\n".join(texts), images


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        media = _field(source, "media_type", f"{where}.source")
        url = f"data:{media};base64,{_field(source, 'data', f'{where}.source')}"
    elif source.get("type") == "url":
        url = _field(source, "url", f"{where}.source")
    else:
        raise InvalidRequest(
            f"image source type {source.get('type')!r} at {where} is not supported",
            param=f"{where.lstrip('$.')}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        media = source.get("media_type") or "application/pdf"
        data = f"data:{media};base64,{_field(source, 'data', f'{where}.source')}"
        return {"type": "file", "file": {"file_data": data}}
    if source.get("type") == "text":
        return {"type": "text", "text": _field(source, "data", f"{where}.source")}
    raise InvalidRequest(
        f"document source type {source.get('type')!r} at {where} is not supported",
        param=f"{where.lstrip('$.')}.source.type",
    )


def _field(obj: dict[str, Any], name: str, where: str) -> Any:
    value = obj.get(name)
    if value is None:
        raise InvalidRequest(f"missing {name!r} at {where}", param=f"{where.lstrip('$.')}.{name}")
    return value
