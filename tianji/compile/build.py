"""Build: the compiled gateway as a Litestar application.

One handler per route plan, made by the operation's endpoint factory, with the
route's auth class, route permission (tianji.guards.rbac) and body limit.
Nothing here opens a socket: the runtime's startup hook does, when a server
starts the app.
"""

from typing import Any

from litestar import HttpMethod, Litestar, Request, Response, route
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream

from tianji.api import ERROR_RENDERERS, OPERATIONS
from tianji.api.errors import EXCEPTION_HANDLERS
from tianji.api.runtime import Runtime
from tianji.compile.model import CompiledGateway, RoutePlan
from tianji.errors import TianjiError
from tianji.guards.auth import Anonymous, Authenticator, Identity
from tianji.guards.rbac import authorize

__all__ = ["build_app", "litestar_path"]


def litestar_path(path: str) -> str:
    """`/engines/{model}/x` -> `/engines/{model:str}/x` (Litestar wants typed parameters)."""
    parts = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}") and ":" not in part:
            part = part[:-1] + ":str}"
        parts.append(part)
    return "/".join(parts) or "/"


def _endpoint(plan: RoutePlan, runtime: Runtime) -> Any:
    """The operation's handler behind the route's auth: it gets the caller's Identity."""
    inner = OPERATIONS[plan.operation](plan, runtime)
    auth: Authenticator = runtime.auth
    public = plan.auth == "public"
    # The operation's own error envelope (Anthropic's on /v1/messages), else the app's.
    render_error = ERROR_RENDERERS.get(plan.operation)

    async def admit(request: Request[Any, Any, Any]) -> Identity:
        if public:
            return Anonymous
        identity = await auth.authenticate(request.headers.items(), plan)
        # Role (management routes), key_type and allowed_routes (every route).
        authorize(identity, plan, request.method)
        return identity

    async def endpoint(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
        try:
            identity = await admit(request)
        except TianjiError as exc:
            if render_error is None:
                raise
            rendered: Response[bytes] = render_error(exc)
            return rendered
        result: Response[bytes] | Stream = await inner(request, identity)
        return result

    return endpoint


def _handler(plan: RoutePlan, runtime: Runtime) -> HTTPRouteHandler:
    return route(
        path=litestar_path(plan.path),
        http_method=[HttpMethod(m) for m in plan.methods],
        status_code=200,
        request_max_body_size=plan.body_limit_bytes,
        name=f"{plan.route_id}{plan.path}:{','.join(plan.methods)}",
        opt={"plan": plan},
        summary=plan.summary or None,
        signature_namespace={"Request": Request, "Response": Response, "Stream": Stream},
    )(_endpoint(plan, runtime))


def build_app(gateway: CompiledGateway, runtime: Runtime) -> Litestar:
    return Litestar(
        route_handlers=[_handler(plan, runtime) for plan in gateway.routes],
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        openapi_config=None,
        # Litestar's default config sends every library's INFO logs to stderr through
        # the root logger; tianji leaves logging to the server (uvicorn) and Python.
        logging_config=None,
        debug=False,
    )
