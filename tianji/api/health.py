"""Health and introspection: liveliness, readiness, /health, /routes."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request, Response

from tianji import __version__
from tianji.api.runtime import Runtime
from tianji.compile.model import RoutePlan
from tianji.guards.auth import Identity

__all__ = ["make_health", "make_liveliness", "make_readiness", "make_route_list"]


def _json(data: Any, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(data), status_code=status, media_type="application/json")


def make_liveliness(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        return _json("I'm alive!")

    return handler


def make_readiness(plan: RoutePlan, runtime: Runtime) -> Any:
    """Ready when the upstream transport is open and, if a database is configured,
    it answers; an orchestrator stops sending traffic on a 503."""

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        db = "Not connected"
        db_ok = True
        if runtime.store is not None:
            db_ok = runtime.store.is_open and await runtime.store.ping()
            db = "connected" if db_ok else "disconnected"
        ready = runtime.http is not None and db_ok
        return _json(
            {
                "status": "healthy" if ready else "unhealthy",
                "db": db,
                "cache": "redis" if runtime.gateway.settings.redis_url else None,
                "version": __version__,
                "success_callbacks": [],
                "last_updated": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(runtime.started_at)
                ),
            },
            200 if ready else 503,
        )

    return handler


def make_health(plan: RoutePlan, runtime: Runtime) -> Any:
    """Lists the deployments (credentials removed). Active probing comes with the router."""

    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        endpoints = [
            {
                "model": d.group,
                "model_id": d.id,
                "provider": d.provider.name,
                "api_base": d.api_base,
            }
            for group in runtime.models.groups.values()
            for d in group.deployments
        ]
        return _json(
            {
                "healthy_endpoints": endpoints,
                "unhealthy_endpoints": [],
                "healthy_count": len(endpoints),
                "unhealthy_count": 0,
            }
        )

    return handler


def make_route_list(plan: RoutePlan, runtime: Runtime) -> Any:
    async def handler(request: Request[Any, Any, Any], identity: Identity) -> Response[bytes]:
        routes = [
            {"path": r.path or "/", "methods": list(r.methods), "name": r.route_id}
            for r in runtime.gateway.routes
        ]
        return _json({"routes": routes})

    return handler
