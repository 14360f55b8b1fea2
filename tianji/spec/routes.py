"""The shape of routes.yaml: the public HTTP surface as data.

A route binds a path and methods to an *operation* (a handler family that the
build step knows, e.g. ``chat`` or ``forward``). An alias names a route and
serves the same operation on another path or method; path parameters of the
alias are handed to the handler like the target's own.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Alias", "Mount", "Route", "RoutesSpec"]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
AuthClass = Literal["llm", "mgmt", "public"]


class Mount(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A named set of prefixes a route is served under (`""` = bare)."""

    prefixes: list[str]


class Route(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: str
    path: str
    methods: list[Method]
    operation: str
    mount: str = "root"
    auth: AuthClass = "llm"
    summary: str = ""
    # Body limit in MB; None = general_settings.max_request_size_mb.
    body_limit_mb: float | None = None
    # Path parameter that names the model (Azure-style routes); overrides the body's.
    model_param: str | None = None
    # forward operation: the upstream path template (default: the route's own path).
    upstream_path: str | None = None
    upstream_headers: dict[str, str] = {}


class Alias(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    path: str
    target: str
    # Default: the target's methods; mounted bare (`root`) unless `mount` says otherwise.
    methods: list[Method] | None = None
    mount: str | None = None
    summary: str = ""


class RoutesSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    version: Literal[1] = 1
    mounts: dict[str, Mount]
    routes: list[Route]
    aliases: list[Alias] = []
