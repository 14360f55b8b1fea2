"""Checks a request body against the `anthropic` SDK's published request types.

The SDK's `MessageCreateParams` are TypedDicts (no runtime validation), so this
walks their annotations: unknown keys, missing required keys, wrong literals and
wrong types all fail. Used by the anthropic adapter tests.
"""

from __future__ import annotations

import collections.abc
import functools
import types
import typing
from typing import Any, NotRequired, Required

from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from typing_extensions import is_typeddict

__all__ = ["NOT_IN_SDK_TYPES", "check_request_type", "check_sdk_type"]


def check_sdk_type(value: Any, annotation: Any, path: str = "body") -> None:
    """Structural check of `value` against an `anthropic.types` TypedDict annotation:
    unknown keys, missing required keys, wrong literals and wrong types all fail."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (Any, object):
        return
    if origin in (Required, NotRequired, typing.Annotated):
        return check_sdk_type(value, args[0], path)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return check_sdk_type(value, option, path)
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{path}: {value!r} matches no option: {errors}")
    if origin is typing.Literal:
        assert value in args, f"{path}: {value!r} not in {args}"
    elif is_typeddict(annotation):
        _check_typeddict(value, annotation, path)
    elif annotation is type(None):
        assert value is None, f"{path}: expected null"
    elif origin in (dict, collections.abc.Mapping):
        assert isinstance(value, dict), f"{path}: expected an object"
        for key, item in value.items():
            check_sdk_type(item, args[1] if args else Any, f"{path}.{key}")
    elif origin is not None and args:  # Iterable / Sequence / List / SequenceNotStr
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        for i, item in enumerate(value):
            check_sdk_type(item, args[0], f"{path}[{i}]")
    elif annotation is float:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), path
    elif annotation in (str, int, bool):
        assert type(value) is annotation, f"{path}: {value!r} is not {annotation.__name__}"
    else:
        raise AssertionError(f"{path}: unhandled annotation {annotation!r}")


@functools.cache
def _hints(typed_dict: type) -> dict[str, Any]:
    return typing.get_type_hints(typed_dict, include_extras=True)


@functools.cache
def _declared_total(typed_dict: type) -> dict[str, bool]:
    """Key -> `total=` of the TypedDict that declared it (bases may differ from the class)."""
    totals: dict[str, bool] = {}
    for base in getattr(typed_dict, "__orig_bases__", ()):
        if is_typeddict(base):
            totals.update(_declared_total(base))
    for key in typed_dict.__annotations__:
        totals.setdefault(key, typed_dict.__total__)
    return totals


def _check_typeddict(value: Any, typed_dict: type, path: str) -> None:
    assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
    hints = _hints(typed_dict)
    unknown = set(value) - set(hints)
    assert not unknown, f"{path}: keys {sorted(unknown)} not in {typed_dict.__name__}"
    for key, hint in hints.items():
        wrapper = typing.get_origin(hint)
        total = _declared_total(typed_dict)[key]
        required = wrapper is Required or (total and wrapper is not NotRequired)
        if key in value:
            check_sdk_type(value[key], hint, f"{path}.{key}")
        else:
            assert not required, f"{path}: missing required {key!r} of {typed_dict.__name__}"


# providers.md §3.1 forwards these, but the installed SDK's MessageCreateParams no
# longer declares them (its Messages types dropped the sampling parameters).
NOT_IN_SDK_TYPES = frozenset({"temperature", "top_p", "top_k"})


def check_request_type(sent: dict[str, Any]) -> None:
    body = {k: v for k, v in sent.items() if k not in NOT_IN_SDK_TYPES}
    schema = MessageCreateParamsStreaming if sent.get("stream") else MessageCreateParamsNonStreaming
    check_sdk_type(body, schema)
