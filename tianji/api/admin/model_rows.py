"""Models stored in the database (`proxy_models` rows): request bodies, their
secrets, and the shapes the model endpoints answer with (management-api.md §8).

`litellm_params` are stored as sent (`os.environ/NAME` references included,
resolved when the deployment is planned), with every credential sealed
(tianji.store.sealed). No answer carries a credential: they are removed from
`litellm_params`, sealed or not, along with header values that look like one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from tianji.api.admin.common import BadRequest, iso
from tianji.compile.model import Deployment
from tianji.spec.loader import ENV_PREFIX
from tianji.store import Row

__all__ = [
    "REDACTED",
    "SECRET_PARAMS",
    "ModelDelete",
    "ModelNew",
    "ModelUpdate",
    "chosen_params",
    "deployment_item",
    "merged",
    "merged_params",
    "model_out",
    "public_params",
    "resolve_env",
    "stored_info",
    "transform_secrets",
]

REDACTED = "***REDACTED***"

# litellm_params fields that are credentials (ModelParams is closed: a field
# tianji does not know is refused, so this list is complete).
SECRET_PARAMS = frozenset(
    {
        "api_key",
        "azure_ad_token",
        "client_secret",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "vertex_credentials",
    }
)
# Header maps among litellm_params, and header names whose value is a credential.
_HEADER_PARAMS = ("headers", "extra_headers")
_SECRET_HEADER = re.compile(r"authorization|api[-_]?key|token|secret|password|cookie", re.I)
# model_info fields the endpoints own: never stored from a request body.
_COMPUTED_INFO = ("id", "db_model")


class ModelNew(msgspec.Struct, kw_only=True):
    model_name: str
    litellm_params: dict[str, Any] | None = None
    tianji_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None


class ModelUpdate(msgspec.Struct, kw_only=True):
    # The id: model_info.id (LiteLLM), top-level model_id (the Go form), or the path.
    model_id: str | None = None
    model_name: str | None = None
    litellm_params: dict[str, Any] | None = None
    tianji_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None


class ModelDelete(msgspec.Struct, kw_only=True):
    id: str | None = None
    model_id: str | None = None


def chosen_params(
    litellm_params: dict[str, Any] | None, tianji_params: dict[str, Any] | None
) -> dict[str, Any] | None:
    """`tianji_params` is another name for `litellm_params`; both at once is a 400."""
    if litellm_params is not None and tianji_params is not None:
        raise BadRequest("Set litellm_params or tianji_params, not both.", param="tianji_params")
    return litellm_params if litellm_params is not None else tianji_params


def stored_info(model_info: Mapping[str, Any] | None) -> dict[str, Any]:
    """model_info as stored: what the caller sent, without the computed fields."""
    return {k: v for k, v in (model_info or {}).items() if k not in _COMPUTED_INFO}


# ---------------------------------------------------------------------------- secrets


def _secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


def transform_secrets(params: Mapping[str, Any], change: Callable[[str], Any]) -> dict[str, Any]:
    """A copy of `params` with `change` applied to every credential string (seal,
    unseal); everything else as it is."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in SECRET_PARAMS and isinstance(value, str):
            out[name] = change(value)
        elif name in _HEADER_PARAMS and isinstance(value, dict):
            out[name] = {
                header: change(v) if _secret_header(header) and isinstance(v, str) else v
                for header, v in value.items()
            }
        else:
            out[name] = value
    return out


def public_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """litellm_params fit to show: credentials and credential headers removed, and
    unset (null) fields left out."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None or name in SECRET_PARAMS:
            continue
        if name in _HEADER_PARAMS and isinstance(value, dict):
            value = {h: v for h, v in value.items() if not _secret_header(h)}
        out[name] = value
    return out


def resolve_env(params: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """`os.environ/NAME` values (top level and header values) replaced by the
    variable; 400 naming the field when it is not set."""

    def value_of(path: str, value: Any) -> Any:
        if not isinstance(value, str) or not value.startswith(ENV_PREFIX):
            return value
        name = value[len(ENV_PREFIX) :]
        if name not in env:
            raise BadRequest(f"{path}: environment variable {name} is not set", param=path)
        return env[name]

    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in _HEADER_PARAMS and isinstance(value, dict):
            out[name] = {h: value_of(f"litellm_params.{name}.{h}", v) for h, v in value.items()}
        else:
            out[name] = value_of(f"litellm_params.{name}", value)
    return out


# ---------------------------------------------------------------------------- merging


def merged(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: objects merge key by key; null means unchanged (management-api §0)."""
    out = dict(base)
    for name, value in patch.items():
        if value is None:
            continue
        current = out.get(name)
        if isinstance(value, dict) and isinstance(current, dict):
            out[name] = merged(current, value)
        else:
            out[name] = value
    return out


def merged_params(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """An update of plain litellm_params: a credential sent back as the redaction
    marker keeps the stored one (as null does)."""
    return merged(current, transform_secrets(patch, lambda v: None if v == REDACTED else v))


# ---------------------------------------------------------------------------- answers


def model_out(row: Row) -> dict[str, Any]:
    """The answer of /model/new and /model/update: the stored row, credentials removed."""
    return {
        "model_id": row["model_id"],
        "model_name": row["model_name"],
        "litellm_params": public_params(row["litellm_params"] or {}),
        "model_info": {**(row["model_info"] or {}), "id": row["model_id"], "db_model": True},
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "updated_at": iso(row["updated_at"]),
        "updated_by": row["updated_by"],
    }


# model_info fields every /model/info item has (null when unknown), as LiteLLM's.
_INFO_FIELDS = (
    "mode",
    "base_model",
    "access_groups",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "max_tokens",
    "max_input_tokens",
    "max_output_tokens",
    "supports_vision",
    "supports_function_calling",
)


def deployment_item(deployment: Deployment, row: Row | None) -> dict[str, Any]:
    """One /model/info item: a config deployment (row None) or a database one."""
    if row is not None:
        params = public_params(row["litellm_params"] or {})
    else:
        params = public_params(msgspec.structs.asdict(deployment.params))
    info: dict[str, Any] = dict.fromkeys(_INFO_FIELDS)
    for price in ("input_cost_per_token", "output_cost_per_token"):
        info[price] = params.get(price)
    info.update(deployment.model_info)
    info.update(id=deployment.id, db_model=row is not None)
    info["litellm_provider"] = deployment.provider.name
    if row is not None:
        info.update(
            team_id=row["team_id"],
            created_at=iso(row["created_at"]),
            created_by=row["created_by"],
            updated_at=iso(row["updated_at"]),
            updated_by=row["updated_by"],
        )
    return {"model_name": deployment.group, "litellm_params": params, "model_info": info}
