"""OpenAI chat request -> Gemini `generateContent` body (providers.md §3.2).

Messages become `systemInstruction` + `contents` (roles user/model, consecutive
same-role turns merged); tools become `functionDeclarations` with their JSON
Schema reduced to what Gemini accepts; sampling params go to `generationConfig`.
Provider extras the client sends (`safety_settings`, `top_k`, `cachedContent`, ...)
are mapped when tianji knows them and otherwise forwarded to the body as given.
"""

from __future__ import annotations

from typing import Any

from tianji.errors import InvalidRequest
from tianji.providers.base import Call
from tianji.providers.gemini_parts import message_contents, tool_declarations
from tianji.providers.openai_compat import apply_params

__all__ = ["chat_body"]

_THINKING_BUDGETS = {"minimal": 128, "low": 1024, "medium": 2048, "high": 4096}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "any": "ANY"}
# Snake-case extras with a known Gemini home; others are forwarded unchanged.
_TOP_LEVEL_EXTRAS = {
    "safety_settings": "safetySettings",
    "cached_content": "cachedContent",
    "tool_config": "toolConfig",
}
# Consumed without an upstream field: Gemini streams and calls tools in parallel anyway.
_CONSUMED = ("model", "stream", "stream_options", "parallel_tool_calls")


def chat_body(call: Call) -> dict[str, Any]:
    """The generateContent body for a chat call (the unsupported-param rule applied)."""
    body = apply_params(call)
    for key in _CONSUMED:
        body.pop(key, None)
    messages = body.pop("messages", None)
    if not isinstance(messages, list):
        raise InvalidRequest("'messages' must be a list.", param="messages")
    system, contents = message_contents(messages)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = tool_declarations(body)
    if tools:
        out["tools"] = tools
    tool_config = _tool_config(body.pop("tool_choice", None))
    if tool_config:
        out["toolConfig"] = tool_config
    config = _generation_config(body)
    for snake, camel in _TOP_LEVEL_EXTRAS.items():
        if snake in body:
            out[camel] = body.pop(snake)
    extra_config = body.pop("generationConfig", None)
    if isinstance(extra_config, dict):
        config = {**extra_config, **config}
    if config:
        out["generationConfig"] = config
    out.update(body)  # the remaining provider extras, as the client wrote them
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = _TOOL_MODES.get(choice)
        if mode is None:
            raise InvalidRequest(f"unknown tool_choice {choice!r}", param="tool_choice")
        return {"functionCallingConfig": {"mode": mode}}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str):
        raise InvalidRequest("tool_choice must name a function", param="tool_choice")
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    """Pops the sampling/output params from `body` into a generationConfig."""
    config: dict[str, Any] = {}
    max_tokens = body.pop("max_completion_tokens", None)
    legacy_max = body.pop("max_tokens", None)
    if max_tokens is None:
        max_tokens = legacy_max
    renames = {
        "temperature": "temperature",
        "top_p": "topP",
        "top_k": "topK",
        "n": "candidateCount",
        "presence_penalty": "presencePenalty",
        "frequency_penalty": "frequencyPenalty",
        "seed": "seed",
    }
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for name, field in renames.items():
        value = body.pop(name, None)
        if value is not None:
            config[field] = value
    stop = body.pop("stop", None)
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    _logprobs(body, config)
    _response_format(body.pop("response_format", None), config)
    _modalities(body, config)
    thinking = _thinking(body.pop("reasoning_effort", None), body.pop("thinking", None))
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def _logprobs(body: dict[str, Any], config: dict[str, Any]) -> None:
    logprobs = body.pop("logprobs", None)
    top = body.pop("top_logprobs", None)
    if logprobs or top is not None:
        config["responseLogprobs"] = True
    if top is not None:
        config["logprobs"] = top


def _response_format(fmt: Any, config: dict[str, Any]) -> None:
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return
    kind = fmt.get("type")
    if kind not in ("json_object", "json_schema"):
        raise InvalidRequest(f"unknown response_format type {kind!r}", param="response_format")
    config["responseMimeType"] = "application/json"
    schema = (fmt.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
    if isinstance(schema, dict):
        # responseJsonSchema takes full JSON Schema ($ref, additionalProperties, ...).
        config["responseJsonSchema"] = schema


def _modalities(body: dict[str, Any], config: dict[str, Any]) -> None:
    modalities = body.pop("modalities", None)
    if modalities:
        config["responseModalities"] = [str(m).upper() for m in modalities]
    audio = body.pop("audio", None)
    if isinstance(audio, dict) and audio.get("voice"):
        voice = {"prebuiltVoiceConfig": {"voiceName": audio["voice"]}}
        config["speechConfig"] = {"voiceConfig": voice}


def _thinking(effort: Any, thinking: Any) -> dict[str, Any] | None:
    """reasoning_effort (or an Anthropic-style `thinking`) -> thinkingConfig."""
    if effort is not None:
        if effort in ("none", "disable"):
            return {"thinkingBudget": 0}
        budget = _THINKING_BUDGETS.get(effort)
        if budget is None:
            raise InvalidRequest(
                f"unknown reasoning_effort {effort!r} (none, minimal, low, medium, high)",
                param="reasoning_effort",
            )
        return {"thinkingBudget": budget, "includeThoughts": True}
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget = thinking.get("budget_tokens")
        config: dict[str, Any] = {"includeThoughts": True}
        if isinstance(budget, int):
            config["thinkingBudget"] = budget
        return config
    return None
