"""OpenAI messages and tools -> Gemini `contents`, `systemInstruction` parts and
`functionDeclarations` (providers.md §3.2).

Gemini has no tool-call ids: a `role: tool` message names its function by
`tool_call_id`, so the id -> name map is rebuilt from the assistant turns of the
same conversation. Gemini's function schemas are an OpenAPI subset: `$ref`s are
inlined and the keywords it rejects are removed.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from tianji.errors import InvalidRequest

__all__ = ["clean_schema", "media_part", "message_contents", "tool_declarations"]

# Schema keywords Gemini rejects; `$defs`/`definitions` go once their $refs are inlined.
_DROPPED_KEYWORDS = frozenset(
    {"$schema", "additionalProperties", "strict", "$defs", "definitions", "$id"}
)
_SCHEMA_VALUED = frozenset({"items", "not", "additionalItems", "contains"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be"})
_MAX_REF_DEPTH = 32


def message_contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents) for OpenAI `messages`."""
    names = _tool_call_names(messages)
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system += _text_parts(message.get("content"), i)
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), i))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, i))
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id"))) or message.get("name")
            if not name:
                raise InvalidRequest(
                    f"messages[{i}]: tool_call_id {message.get('tool_call_id')!r} matches no "
                    "assistant tool call in this conversation",
                    param="messages",
                )
            _append(contents, "user", [_function_response(name, message.get("content"), i)])
        elif role == "function":
            name = message.get("name") or ""
            _append(contents, "user", [_function_response(name, message.get("content"), i)])
        else:
            raise InvalidRequest(f"messages[{i}]: unknown role {role!r}", param="messages")
    return system, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Gemini wants alternating turns: a turn of the same role as the last one joins it."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"] += parts
    else:
        contents.append({"role": role, "parts": parts})


def _tool_call_names(messages: list[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "assistant":
            for call in message.get("tool_calls") or ():
                function = (call.get("function") if isinstance(call, dict) else None) or {}
                if function.get("name") and call.get("id"):
                    names[str(call["id"])] = str(function["name"])
    return names


def _text_of(content: Any, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    raise InvalidRequest(f"messages[{i}].content must be a string or a list", param="messages")


def _text_parts(content: Any, i: int) -> list[dict[str, Any]]:
    text = _text_of(content, i)
    return [{"text": text}] if text else []


def _user_parts(content: Any, i: int) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_parts(content, i)
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            if isinstance(image, str):
                image = {"url": image}
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise InvalidRequest(f"messages[{i}]: image_url needs a url", param="messages")
            parts.append(media_part(image["url"], image.get("format")))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            mime = f"audio/{audio.get('format') or 'wav'}"
            parts.append({"inline_data": {"mime_type": mime, "data": audio.get("data", "")}})
        elif kind == "file":
            parts.append(_file_part(part.get("file") or {}, i))
        else:
            raise InvalidRequest(
                f"messages[{i}]: content part type {kind!r} is not supported by Gemini",
                param="messages",
            )
    return parts


def _file_part(file: dict[str, Any], i: int) -> dict[str, Any]:
    data, file_id, mime = file.get("file_data"), file.get("file_id"), file.get("format")
    if isinstance(data, str) and data and not data.startswith("data:"):
        # Bare base64 (no data URL): the type comes from `format` or the file name.
        mime = mime or mimetypes.guess_type(str(file.get("filename") or ""))[0]
        return {"inline_data": {"mime_type": mime or "application/pdf", "data": data}}
    source = data or file_id
    if not isinstance(source, str) or not source:
        raise InvalidRequest(f"messages[{i}]: a file part needs file_data or file_id")
    return media_part(source, mime)


def media_part(url: str, mime: str | None = None) -> dict[str, Any]:
    """A data URL is inlined; any other URL is referenced as `file_data` (gs://,
    the Files API, YouTube, and https URLs, which tianji does not download)."""
    if url.startswith("data:"):
        header, comma, payload = url[5:].partition(",")
        if not comma:
            raise InvalidRequest("malformed data URL in a content part", param="messages")
        media_type, *flags = header.split(";")
        if "base64" in flags:
            data = payload
        else:
            data = base64.b64encode(unquote_to_bytes(payload)).decode()
        inline = {"mime_type": mime or media_type or "application/octet-stream", "data": data}
        return {"inline_data": inline}
    guessed = mime or _guess_mime(url)
    file_data: dict[str, Any] = {"file_uri": url}
    if guessed:
        file_data["mime_type"] = guessed
    return {"file_data": file_data}


def _guess_mime(url: str) -> str | None:
    split = urlsplit(url)
    if split.hostname in _YOUTUBE_HOSTS:
        return "video/mp4"
    return mimetypes.guess_type(split.path)[0]


def _assistant_parts(message: dict[str, Any], i: int) -> list[dict[str, Any]]:
    parts = _text_parts(message.get("content"), i)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        part: dict[str, Any] = {
            "functionCall": {"name": function.get("name"), "args": _arguments(function, i)}
        }
        signature = _thought_signature(call)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        parts.append({"functionCall": {"name": legacy.get("name"), "args": _arguments(legacy, i)}})
    return parts


def _arguments(function: dict[str, Any], i: int) -> Any:
    raw = function.get("arguments")
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidRequest(
            f"messages[{i}]: tool call arguments are not valid JSON", param="messages"
        ) from None


def _thought_signature(call: dict[str, Any]) -> str | None:
    """Where tianji (and Google's OpenAI layer) put the signature in a response."""
    google = (call.get("extra_content") or {}).get("google") or {}
    specific = call.get("provider_specific_fields") or {}
    signature = google.get("thought_signature") or specific.get("thought_signature")
    return signature if isinstance(signature, str) else None


def _function_response(name: str, content: Any, i: int) -> dict[str, Any]:
    text = _text_of(content, i)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


def tool_declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Pops `tools`, `functions` and `web_search_options` into Gemini `tools`."""
    declarations: list[dict[str, Any]] = []
    native: list[dict[str, Any]] = []
    for tool in body.pop("tools", None) or ():
        if (
            isinstance(tool, dict)
            and tool.get("type", "function") == "function"
            and ("function" in tool)
        ):
            declarations.append(_declaration(tool["function"]))
        elif isinstance(tool, dict) and "type" not in tool:
            native.append(tool)  # a Gemini tool as is, e.g. {"codeExecution": {}}
        else:
            raise InvalidRequest("tools[] must be function tools for Gemini", param="tools")
    for function in body.pop("functions", None) or ():
        declarations.append(_declaration(function))
    tools: list[dict[str, Any]] = []
    if declarations:
        tools.append({"functionDeclarations": declarations})
    if body.pop("web_search_options", None) is not None:
        tools.append({"googleSearch": {}})
    return tools + native


def _declaration(function: dict[str, Any]) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    # Gemini refuses an OBJECT schema with no properties: a no-argument function has none.
    if isinstance(parameters, dict) and (
        parameters.get("properties") or parameters.get("type") != "object"
    ):
        declaration["parameters"] = clean_schema(parameters)
    return declaration


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema -> Gemini's subset: `$ref` inlined, rejected keywords removed,
    `"type": [T, "null"]` -> `"type": T, "nullable": true`."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    cleaned: dict[str, Any] = _clean(schema, defs, ())
    return cleaned


def _clean(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_clean(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or len(seen) >= _MAX_REF_DEPTH or name not in defs:
            # A recursive (or dangling) reference cannot be inlined: an open object.
            return {"type": "object", "description": node.get("description", "")}
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _clean(merged, defs, (*seen, name))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _clean(sub, defs, seen) for name, sub in value.items()}
        elif key in _SCHEMA_VALUED or key in _SCHEMA_LISTS:
            out[key] = _clean(value, defs, seen)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out[key] = types[0]
            else:  # Gemini takes one type per schema
                out["anyOf"] = [{"type": t} for t in types]
            if "null" in value:
                out["nullable"] = True
        else:
            out[key] = value
    return out
