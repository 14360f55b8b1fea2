"""OpenAI chat request -> Anthropic Messages request (providers.md §3.1).

Pure functions of the (already defaulted and param-checked) OpenAI body, so the
same translation serves the direct API and Claude on other clouds (Vertex
`rawPredict`, Bedrock `invoke`), which only differ in URL, auth and `model`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import msgspec

from tianji.errors import InvalidRequest

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "JSON_TOOL",
    "anthropic_messages",
    "is_json_mode",
    "messages_request",
]

DEFAULT_MAX_TOKENS = 4096
# The forced tool that carries `response_format` (Anthropic has no JSON mode of its own).
JSON_TOOL = "json_tool_call"
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
# search_context_size -> how many searches the web_search tool may run.
_SEARCH_USES = {"low": 1, "medium": 5, "high": 10}
# Request keys translated here; other keys that are not OpenAI params are provider
# extras (top_k, container, mcp_servers, ...) and are forwarded unchanged.
_TRANSLATED = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "stop", "stream",
        "stream_options", "temperature", "top_p", "top_k", "tools", "tool_choice",
        "parallel_tool_calls", "response_format", "user", "metadata", "reasoning_effort",
        "thinking", "web_search_options", "drop_params",
    }
)  # fmt: skip


def is_json_mode(body: Mapping[str, Any]) -> bool:
    """Whether `response_format` asks for JSON (and so the forced JSON tool is used)."""
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def messages_request(
    body: Mapping[str, Any],
    *,
    max_tokens: int | None,
    openai_params: Collection[str],
    stream: bool,
) -> dict[str, Any]:
    """The Anthropic body (without `model`) for an OpenAI chat body. `max_tokens` is the
    configured limit (request or deployment), None when nothing set one."""
    system, messages = anthropic_messages(body.get("messages") or [])
    out: dict[str, Any] = {"messages": messages}
    if system is not None:
        out["system"] = system
    thinking = _thinking(body)
    if thinking is not None:
        out["thinking"] = thinking
    out["max_tokens"] = max_tokens if max_tokens is not None else _default_max_tokens(thinking)
    _sampling(body, out)
    _tools(body, out, thinking_on=bool(thinking and thinking.get("type") == "enabled"))
    if stream:
        out["stream"] = True
    for key, value in body.items():
        if key not in _TRANSLATED and key not in openai_params:
            out[key] = value
    return out


def _default_max_tokens(thinking: Mapping[str, Any] | None) -> int:
    """Thinking tokens count against max_tokens, and Anthropic rejects a budget that is
    not below it: the default leaves the answer its own DEFAULT_MAX_TOKENS."""
    budget = thinking.get("budget_tokens") if thinking else None
    return DEFAULT_MAX_TOKENS + budget if isinstance(budget, int) else DEFAULT_MAX_TOKENS


def _thinking(body: Mapping[str, Any]) -> dict[str, Any] | None:
    explicit = body.get("thinking")
    if isinstance(explicit, dict):
        return explicit
    effort = body.get("reasoning_effort")
    if effort is None or effort in ("none", "disable"):
        return None
    budget = THINKING_BUDGETS.get(str(effort))
    if budget is None:
        raise InvalidRequest(
            f"reasoning_effort must be one of {sorted(THINKING_BUDGETS)} or 'none'",
            param="reasoning_effort",
        )
    return {"type": "enabled", "budget_tokens": budget}


def _sampling(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else list(stop)
        if stops:
            out["stop_sequences"] = stops
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    # OpenAI's `metadata` is free-form (stored completions); Anthropic's takes only user_id.
    user_id = user_id or body.get("user")
    if user_id:
        out["metadata"] = {"user_id": str(user_id)}


# --------------------------------------------------------------------------- tools


def _tools(body: Mapping[str, Any], out: dict[str, Any], *, thinking_on: bool) -> None:
    tools = [_tool(t) for t in body.get("tools") or []]
    search = body.get("web_search_options")
    if isinstance(search, dict):
        tools.append(_web_search_tool(search))
    choice = _tool_choice(body.get("tool_choice"))
    if is_json_mode(body):
        tools.append({"name": JSON_TOOL, "input_schema": _json_schema(body["response_format"])})
        # Forcing the tool is what makes the reply JSON; with the client's own tools it
        # stays their choice, and Anthropic refuses forced tools while thinking.
        if not body.get("tools") and not thinking_on:
            choice = {"type": "tool", "name": JSON_TOOL}
    if not tools:
        return  # a tool_choice without tools is an Anthropic 400; nothing to choose from
    out["tools"] = tools
    if body.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return dict(tool)  # Anthropic-native tools (web_search_*, bash_*, ...) pass through
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    if tool.get("cache_control"):
        out["cache_control"] = tool["cache_control"]
    return out


def _web_search_tool(options: Mapping[str, Any]) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search"}
    uses = _SEARCH_USES.get(str(options.get("search_context_size")))
    if uses is not None:
        tool["max_uses"] = uses
    location = options.get("user_location")
    if isinstance(location, dict) and isinstance(location.get("approximate"), dict):
        tool["user_location"] = {"type": "approximate", **location["approximate"]}
    return tool


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    raise InvalidRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")


def _json_schema(response_format: Mapping[str, Any]) -> dict[str, Any]:
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return dict(schema) if isinstance(schema, dict) else {"type": "object"}


# --------------------------------------------------------------------------- messages


def anthropic_messages(messages: list[Any]) -> tuple[str | list[dict[str, Any]] | None, list[Any]]:
    """(system, messages): system/developer turns lifted out, roles merged so they
    alternate, and a leading "." user turn when the conversation does not start with one."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest("each message must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system += _text_blocks(message.get("content"), f"messages[{i}].content")
            continue
        role, blocks = _turn(message, i)
        if not blocks:
            continue  # Anthropic rejects empty turns; an empty one carries nothing
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "."})
    return _system(system), turns


def _system(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    if not blocks:
        return None
    if any("cache_control" in b for b in blocks):
        return blocks
    return "\n\n".join(b["text"] for b in blocks)


def _turn(message: dict[str, Any], i: int) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    where = f"messages[{i}]"
    if role == "user":
        blocks = _content_blocks(message.get("content"), f"{where}.content")
    elif role == "assistant":
        blocks = _assistant_blocks(message, where)
    elif role == "tool":
        role, blocks = "user", [_tool_result(message, where)]
    else:
        raise InvalidRequest(
            f"role {role!r} is not supported by anthropic (use tools / role 'tool')",
            param=f"{where}.role",
        )
    if message.get("cache_control") and blocks:
        # LiteLLM's message-level cache_control marks the message's last block.
        blocks[-1] = {**blocks[-1], "cache_control": message["cache_control"]}
    return str(role), blocks


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks = [_thinking_block(b) for b in message.get("thinking_blocks") or []]
    blocks += _content_blocks(message.get("content"), f"{where}.content")
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _arguments(function.get("arguments"), f"{where}.tool_calls[{j}]"),
            }
        )
    return blocks


def _thinking_block(block: Mapping[str, Any]) -> dict[str, Any]:
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data")}
    return {
        "type": "thinking",
        "thinking": block.get("thinking", ""),
        "signature": block.get("signature", ""),
    }


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    try:
        parsed = msgspec.json.decode(raw)
    except (msgspec.DecodeError, TypeError):
        raise InvalidRequest(
            "tool call arguments are not valid JSON", param=f"{where}.function.arguments"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidRequest(
            "tool call arguments must be a JSON object", param=f"{where}.function.arguments"
        )
    return parsed


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    tool_use_id = message.get("tool_call_id")
    if not tool_use_id:
        raise InvalidRequest("tool messages need a tool_call_id", param=f"{where}.tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        block["content"] = _content_blocks(content, f"{where}.content")
    return block


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    blocks = _content_blocks(content, where)
    if any(b["type"] != "text" for b in blocks):
        raise InvalidRequest("system messages may only contain text", param=where)
    return blocks


def _content_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest("content must be a string or a list of parts", param=where)
    blocks = []
    for j, part in enumerate(content):
        block = _part(part, f"{where}[{j}]")
        if block is not None:
            if isinstance(part, dict) and part.get("cache_control"):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
    return blocks


def _part(part: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        raise InvalidRequest("content parts must be objects", param=where)
    kind = part.get("type")
    if kind == "text":
        text = part.get("text") or ""
        return {"type": "text", "text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return _media_block(str(url or ""), where)
    if kind == "file":
        return _file_block(part.get("file") or {}, where)
    if kind in ("input_audio", "refusal"):
        raise InvalidRequest(f"anthropic does not accept {kind!r} content parts", param=where)
    return {k: v for k, v in part.items() if k != "cache_control"}  # Anthropic-native block


def _media_block(url: str, where: str) -> dict[str, Any]:
    if url.startswith("data:"):
        media_type, data = _data_url(url, where)
        kind = "document" if media_type == "application/pdf" else "image"
        return {"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("image_url must be a data: URL or an http(s) URL", param=where)


def _file_block(file: Mapping[str, Any], where: str) -> dict[str, Any]:
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise InvalidRequest(
            "anthropic needs file parts as file_data (file_id is not supported)", param=where
        )
    if not data.startswith("data:"):
        data = f"data:application/pdf;base64,{data}"  # bare base64: OpenAI's file parts are PDFs
    media_type, payload = _data_url(data, where)
    if media_type.startswith("image/"):
        return _media_block(data, where)
    if media_type != "application/pdf":
        raise InvalidRequest(f"unsupported file type {media_type!r} for anthropic", param=where)
    source = {"type": "base64", "media_type": media_type, "data": payload}
    block: dict[str, Any] = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, sep, data = url[len("data:") :].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not media_type:
        raise InvalidRequest("data URLs must be data:<media type>;base64,<data>", param=where)
    return media_type, data
