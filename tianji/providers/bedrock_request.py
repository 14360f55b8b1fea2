"""OpenAI chat request -> Bedrock Converse request (providers.md §3.3).

Messages become user/assistant turns of content blocks (same-role turns merged,
tool results in user turns), system messages the `system` list, sampling params
`inferenceConfig`, tools `toolConfig`, and model-specific extras
`additionalModelRequestFields`.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from tianji.errors import InvalidRequest, UnsupportedParams
from tianji.providers.base import Call

__all__ = ["JSON_TOOL", "converse_body", "json_mode", "unsupported"]

JSON_TOOL = "json_tool_call"
# reasoning_effort -> Claude thinking budget (as the Anthropic adapter, providers.md §3.1).
_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
# Top-level Converse fields a client may send through extra_body; other extras
# (top_k, ...) are model-specific and go to additionalModelRequestFields.
_CONVERSE_FIELDS = frozenset(
    {
        "guardrailConfig",
        "performanceConfig",
        "promptVariables",
        "requestMetadata",
        "additionalModelResponseFieldPaths",
    }
)
_TRANSLATED = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "stop", "tools", "tool_choice", "response_format",
        "reasoning_effort", "thinking",
    }
)  # fmt: skip
_CACHE_POINT = {"cachePoint": {"type": "default"}}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}  # fmt: skip
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf", "text/csv": "csv", "text/plain": "txt", "text/html": "html",
    "text/markdown": "md", "application/msword": "doc", "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}  # fmt: skip
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")


def json_mode(call: Call) -> bool:
    """Whether the answer is asked as JSON (then a forced tool carries it)."""
    body = call.body or {}
    fmt = body.get("response_format") or call.deployment.request_defaults.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object")


def converse_body(call: Call, body: dict[str, Any], model: str) -> dict[str, Any]:
    """The Converse request for an OpenAI chat body (deployment defaults already applied)."""
    messages, system = messages_and_system(body.get("messages") or [])
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    inference = _inference_config(body)
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body, _has_tool_blocks(messages))
    if tool_config:
        out["toolConfig"] = tool_config
    additional = _additional_fields(call, body, model)
    for key, value in body.items():
        if key in _TRANSLATED:
            continue
        if key in _CONVERSE_FIELDS:
            out[key] = value
        else:
            additional[key] = value
    if additional:
        out["additionalModelRequestFields"] = additional
    return out


def _inference_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _tool_config(body: dict[str, Any], history_has_tools: bool) -> dict[str, Any] | None:
    specs = [block for tool in body.get("tools") or [] for block in _tool_spec(tool)]
    choice = body.get("tool_choice")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        json_spec: dict[str, Any] = {
            "name": JSON_TOOL,
            "description": "Answer with JSON",
            "inputSchema": {"json": schema},
        }
        specs.append({"toolSpec": json_spec})
        return {"tools": specs, "toolChoice": {"tool": {"name": JSON_TOOL}}}
    if not specs:
        return None
    if choice == "none":
        # Converse rejects toolUse/toolResult blocks without a toolConfig, so a
        # conversation that used tools keeps them listed (the model may call one).
        return {"tools": specs} if history_has_tools else None
    config: dict[str, Any] = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise InvalidRequest("tool_choice needs function.name", param="tool_choice")
        config["toolChoice"] = {"tool": {"name": name}}
    return config


def _tool_spec(tool: Any) -> list[dict[str, Any]]:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise InvalidRequest("bedrock supports function tools only", param="tools")
    function = tool.get("function") or {}
    spec: dict[str, Any] = {
        "name": function.get("name"),
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    blocks: list[dict[str, Any]] = [{"toolSpec": spec}]
    if tool.get("cache_control"):
        blocks.append(_CACHE_POINT)
    return blocks


def unsupported(call: Call, param: str, model: str) -> None:
    """The drop_params rule for a param this model (not the whole provider) cannot take:
    returns when it may be dropped, else raises the 400."""
    drop = call.drop_params if call.drop_params is not None else call.deployment.drop_params
    if not drop:
        raise UnsupportedParams(
            f"bedrock does not support parameters: ['{param}'] for {model}. "
            "To drop them, set drop_params=true (request, deployment or litellm_settings).",
            param=param,
        )


def _additional_fields(call: Call, body: dict[str, Any], model: str) -> dict[str, Any]:
    additional: dict[str, Any] = {}
    if isinstance(body.get("thinking"), dict):
        additional["thinking"] = body["thinking"]
    effort = body.get("reasoning_effort")
    if effort is None or "thinking" in additional:
        return additional
    if "anthropic" not in model and "claude" not in model:
        unsupported(call, "reasoning_effort", model)
        return additional
    if effort in _BUDGETS:
        additional["thinking"] = {"type": "enabled", "budget_tokens": _BUDGETS[effort]}
    return additional


# --------------------------------------------------------------------------- messages


def messages_and_system(
    messages: list[Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Converse turns, system blocks). Converse wants alternating user/assistant turns
    starting with a user turn, so same-role turns merge and a leading assistant turn
    gets a placeholder user turn before it."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    documents = _Counter()
    for message in messages:
        if not isinstance(message, dict):
            raise InvalidRequest("each message must be an object", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system += _with_cache_point(message, _blocks(message.get("content"), documents))
            continue
        if role == "tool":
            turn_role, blocks = "user", [_tool_result(message, documents)]
        elif role == "assistant":
            turn_role, blocks = "assistant", _assistant_blocks(message, documents)
        elif role == "user":
            turn_role, blocks = "user", _blocks(message.get("content"), documents)
        else:
            raise InvalidRequest(f"bedrock does not support role {role!r}", param="messages")
        blocks = _with_cache_point(message, blocks)
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": turn_role, "content": blocks})
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"text": "."}]})
    return turns, system


class _Counter:
    """Numbers unnamed documents: Converse requires a name on each."""

    def __init__(self) -> None:
        self.count = 0

    def next_name(self) -> str:
        self.count += 1
        return f"document {self.count}"


def _with_cache_point(message: dict[str, Any], blocks: list[dict[str, Any]]) -> list[Any]:
    return [*blocks, _CACHE_POINT] if message.get("cache_control") and blocks else blocks


def _assistant_blocks(message: dict[str, Any], documents: _Counter) -> list[dict[str, Any]]:
    blocks = [_reasoning_block(b) for b in message.get("thinking_blocks") or []]
    blocks += _blocks(message.get("content"), documents)
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = msgspec.json.decode(function.get("arguments") or "{}")
        except msgspec.DecodeError:
            raise InvalidRequest(
                "tool_calls[].function.arguments must be a JSON object", param="messages"
            ) from None
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.get("id"),
                    "name": function.get("name"),
                    "input": arguments,
                }
            }
        )
    return blocks


def _reasoning_block(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("type") == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block.get("data", "")}}
    text = {"text": block.get("thinking", "")}
    if block.get("signature"):
        text["signature"] = block["signature"]
    return {"reasoningContent": {"reasoningText": text}}


def _tool_result(message: dict[str, Any], documents: _Counter) -> dict[str, Any]:
    content = message.get("content")
    blocks = [b for b in _blocks(content, documents) if "cachePoint" not in b]
    if not blocks:  # Converse rejects an empty result
        blocks = [{"text": content if isinstance(content, str) and content else "."}]
    return {"toolResult": {"toolUseId": message.get("tool_call_id"), "content": blocks}}


def _blocks(content: Any, documents: _Counter) -> list[dict[str, Any]]:
    """OpenAI content (string or parts) -> Converse blocks; blank text is left out
    because Converse rejects it."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not str(part.get("text", "")).strip():
                continue
            blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part["image_url"]))
        elif kind == "file":
            blocks.append(_document(part.get("file") or {}, documents))
        else:
            raise InvalidRequest(f"bedrock does not support content part {kind!r}")
        if part.get("cache_control"):
            blocks.append(_CACHE_POINT)
    return blocks


def _data_url(url: str, what: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    head, comma, data = url.partition(",")
    media_type, *options = head.removeprefix("data:").split(";")
    if not url.startswith("data:") or not comma or "base64" not in options:
        raise InvalidRequest(
            f"bedrock needs {what} inline as a base64 data: URL (or an s3:// URI); "
            "tianji does not fetch remote URLs for it",
        )
    return media_type.lower(), data


def _image(image_url: Any) -> dict[str, Any]:
    url = image_url.get("url", "") if isinstance(image_url, dict) else str(image_url)
    if url.startswith("s3://"):
        extension = url.rsplit(".", 1)[-1].lower()
        fmt = "jpeg" if extension == "jpg" else extension
        return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    media_type, data = _data_url(url, "images")
    fmt = _IMAGE_FORMATS.get(media_type)
    if fmt is None:
        raise InvalidRequest(f"bedrock does not support image type {media_type!r}")
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _document(file: dict[str, Any], documents: _Counter) -> dict[str, Any]:
    media_type, data = _data_url(str(file.get("file_data", "")), "files")
    fmt = _DOCUMENT_FORMATS.get(media_type)
    if fmt is None:
        raise InvalidRequest(f"bedrock does not support document type {media_type!r}")
    # Names allow letters, digits, whitespace (single), hyphens, parentheses, brackets.
    stem = str(file.get("filename") or "").rsplit(".", 1)[0]
    name = " ".join(_NOT_IN_NAME.sub(" ", stem).split()) or documents.next_name()
    return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}
