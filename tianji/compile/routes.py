"""Link and plan routes.yaml: mounts, operations, aliases, duplicates."""

from __future__ import annotations

from collections.abc import Collection

from tianji.compile.model import RoutePlan
from tianji.spec.routes import Alias, Route, RoutesSpec
from tianji.spec.source import Located, Problem

__all__ = ["plan_routes"]

_MB = 1024 * 1024


def plan_routes(
    spec: RoutesSpec,
    doc: Located,
    *,
    operations: Collection[str],
    default_body_mb: float,
    multipart_body_mb: float,
    multipart_operations: Collection[str],
) -> tuple[list[RoutePlan], list[Problem]]:
    problems: list[Problem] = []
    by_id: dict[str, tuple[int, Route]] = {}
    for i, route in enumerate(spec.routes):
        if route.id in by_id:
            problems.append(_problem(doc, ("routes", i, "id"), f"duplicate route id {route.id!r}"))
        by_id.setdefault(route.id, (i, route))
        if route.operation not in operations:
            problems.append(
                _problem(
                    doc,
                    ("routes", i, "operation"),
                    f"unknown operation {route.operation!r} "
                    f"(known: {', '.join(sorted(operations))})",
                )
            )
        if route.mount not in spec.mounts:
            problems.append(_problem(doc, ("routes", i, "mount"), f"unknown mount {route.mount!r}"))
        if route.model_param and "{" + route.model_param + "}" not in route.path:
            problems.append(
                _problem(
                    doc,
                    ("routes", i, "model_param"),
                    f"model_param {route.model_param!r} is not a parameter of {route.path}",
                )
            )

    def limit(route: Route) -> int:
        if route.body_limit_mb is not None:
            return int(route.body_limit_mb * _MB)
        mb = multipart_body_mb if route.operation in multipart_operations else default_body_mb
        return int(mb * _MB)

    plans: list[RoutePlan] = []
    for route in spec.routes:
        if route.mount in spec.mounts:
            plans += _mount(
                route, route.path, spec.mounts[route.mount].prefixes, None, limit(route)
            )
    for i, alias in enumerate(spec.aliases):
        target = by_id.get(alias.target)
        if target is None:
            problems.append(
                _problem(
                    doc,
                    ("aliases", i, "target"),
                    f"alias target {alias.target!r} is not a route id",
                )
            )
            continue
        route = target[1]
        mount = alias.mount or "root"
        if mount not in spec.mounts:
            problems.append(_problem(doc, ("aliases", i, "mount"), f"unknown mount {mount!r}"))
            continue
        plans += _mount(
            _as_route(alias, route), alias.path, spec.mounts[mount].prefixes, route.id, limit(route)
        )
    problems += _duplicates(plans, spec, doc)
    return plans, problems


def _as_route(alias: Alias, route: Route) -> Route:
    methods = alias.methods if alias.methods is not None else route.methods
    upstream = route.upstream_path or route.path
    return Route(
        id=route.id,
        path=alias.path,
        methods=methods,
        operation=route.operation,
        mount=route.mount,
        auth=route.auth,
        summary=alias.summary or route.summary,
        body_limit_mb=route.body_limit_mb,
        model_param=route.model_param,
        upstream_path=upstream,
        upstream_headers=route.upstream_headers,
    )


def _mount(
    route: Route, path: str, prefixes: list[str], alias_of: str | None, body_limit: int
) -> list[RoutePlan]:
    return [
        RoutePlan(
            route_id=route.id,
            path=prefix + path,
            methods=tuple(route.methods),
            operation=route.operation,
            auth=route.auth,
            body_limit_bytes=body_limit,
            model_param=route.model_param,
            upstream_path=route.upstream_path or route.path,
            upstream_headers=tuple(route.upstream_headers.items()),
            summary=route.summary,
            alias_of=alias_of,
        )
        for prefix in prefixes
    ]


def _duplicates(plans: list[RoutePlan], spec: RoutesSpec, doc: Located) -> list[Problem]:
    """A (method, path) served twice is an error, reported at the later declaration."""
    seen: dict[tuple[str, str], RoutePlan] = {}
    problems = []
    for plan in plans:
        for method in plan.methods:
            key = (method, _shape(plan.path))
            first = seen.setdefault(key, plan)
            if first is not plan:
                problems.append(
                    _problem(
                        doc,
                        _where(plan, spec),
                        f"duplicate route: {method} {plan.path} "
                        f"is already served by {first.route_id!r}",
                    )
                )
    return problems


def _shape(path: str) -> str:
    """`/a/{x}/b` and `/a/{y}/b` are the same route for the router."""
    parts = ["{}" if p.startswith("{") and p.endswith("}") else p for p in path.split("/")]
    return "/".join(parts)


def _where(plan: RoutePlan, spec: RoutesSpec) -> tuple[str | int, ...]:
    # The last declaration with that id and path: the one that came second.
    if plan.alias_of is not None:
        aliases = [
            i
            for i, alias in enumerate(spec.aliases)
            if plan.path.endswith(alias.path) and alias.target == plan.alias_of
        ]
        return ("aliases", aliases[-1]) if aliases else ("aliases",)
    matches = [
        i
        for i, route in enumerate(spec.routes)
        if route.id == plan.route_id and plan.path.endswith(route.path)
    ]
    return ("routes", matches[-1]) if matches else ("routes",)


def _problem(doc: Located, path: tuple[str | int, ...], message: str) -> Problem:
    return doc.problem(path, message)
