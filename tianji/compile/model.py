"""The compiled gateway: immutable plans resolved once at startup.

Everything the request path needs is precomputed here (upstream base URLs,
auth headers, timeouts, parameter sets), so a request does lookups, not
decisions about configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tianji.spec.config import ModelParams
from tianji.spec.providers import Auth
from tianji.upstream.types import Timeouts

__all__ = [
    "CompiledGateway",
    "Deployment",
    "GatewaySettings",
    "ModelGroup",
    "ModelTable",
    "ProviderKind",
    "Resolved",
    "RoutePlan",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProviderKind:
    name: str
    adapter: str
    title: str
    base_url: str | None
    base_url_env: tuple[str, ...]
    key_env: tuple[str, ...]
    api_version_env: tuple[str, ...]
    auth: Auth
    headers: Mapping[str, str]
    param_headers: Mapping[str, str]
    # Supported operation -> upstream path.
    paths: Mapping[str, str]
    # Operation -> OpenAI params this provider accepts.
    params: Mapping[str, frozenset[str]]
    param_renames: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    group: str
    provider: ProviderKind
    # Upstream model name; a `*` is replaced by the wildcard capture per request.
    model: str
    api_base: str
    api_key: str | None
    api_version: str | None
    params: ModelParams
    timeouts: Timeouts
    stream_timeouts: Timeouts
    drop_params: bool
    request_defaults: Mapping[str, Any]
    # Auth, static and param headers, ready to send.
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    weight: float = 1.0
    model_info: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def upstream_model(self, capture: str | None) -> str:
        return self.model.replace("*", capture) if capture is not None else self.model


@dataclass(frozen=True, slots=True)
class ModelGroup:
    name: str
    deployments: tuple[Deployment, ...]

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.name

    @property
    def owned_by(self) -> str:
        return self.deployments[0].provider.name


@dataclass(frozen=True, slots=True)
class Resolved:
    group: ModelGroup
    # The text matched by `*` in a wildcard group name, else None.
    capture: str | None


@dataclass(frozen=True)
class ModelTable:
    groups: Mapping[str, ModelGroup]
    # alias -> (group name, hidden)
    aliases: Mapping[str, tuple[str, bool]]
    # Wildcard groups, most specific (longest literal part) first.
    wildcards: tuple[ModelGroup, ...] = ()

    def resolve(self, requested: str) -> Resolved | None:
        """Requested name -> model_group_alias -> exact group -> most specific wildcard."""
        alias = self.aliases.get(requested)
        if alias is not None:
            requested = alias[0]
        group = self.groups.get(requested)
        if group is not None and not group.is_wildcard:
            return Resolved(group, None)
        for group in self.wildcards:
            head, _, tail = group.name.partition("*")
            if (
                requested.startswith(head)
                and requested.endswith(tail)
                and (len(requested) >= len(head) + len(tail))
            ):
                return Resolved(group, requested[len(head) : len(requested) - len(tail)])
        return None

    def public_names(self) -> list[str]:
        """Names shown by GET /models: groups and non-hidden aliases."""
        names = list(self.groups)
        names += [alias for alias, (_, hidden) in self.aliases.items() if not hidden]
        return names


@dataclass(frozen=True, slots=True)
class RoutePlan:
    route_id: str
    # Full path as served (prefix included), in the YAML's `{param}` form.
    path: str
    methods: tuple[str, ...]
    operation: str
    auth: str
    body_limit_bytes: int
    model_param: str | None
    upstream_path: str
    upstream_headers: tuple[tuple[str, str], ...]
    summary: str = ""
    alias_of: str | None = None


@dataclass(frozen=True)
class GatewaySettings:
    master_key: str | None
    key_headers: tuple[str, ...]
    max_request_bytes: int
    max_multipart_bytes: int
    drop_params: bool
    # Operation -> model used when a request names none (general_settings.*_model).
    default_models: Mapping[str, str]
    database_url: str | None
    redis_url: str | None
    available_teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompiledGateway:
    routes: tuple[RoutePlan, ...]
    models: ModelTable
    providers: Mapping[str, ProviderKind]
    settings: GatewaySettings
