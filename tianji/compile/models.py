"""Link and plan model deployments into a model table.

The config's model_list is planned at startup (`plan_models`); deployments
stored in the database (POST /model/new) go through the same checks one at a
time (`plan_deployment`), and `assemble_table` groups config and database
deployments into the table requests are routed with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgspec

from tianji.compile.model import Deployment, ModelGroup, ModelTable, ProviderKind
from tianji.providers import adapter_for
from tianji.spec.config import REQUEST_DEFAULT_FIELDS, ConfigSpec, ModelEntry, ModelParams
from tianji.spec.source import Located, PathKey, Problem, Severity, format_path
from tianji.upstream.types import Timeouts

__all__ = ["assemble_table", "plan_deployment", "plan_models"]

DEFAULT_TIMEOUT = 600.0
CONNECT_TIMEOUT = 5.0


@dataclass
class _Context:
    config: ConfigSpec
    doc: Located | None
    providers: Mapping[str, ProviderKind]
    env: Mapping[str, str]
    strict_env: bool
    problems: list[Problem]

    def report(self, path: tuple[PathKey, ...], message: str, *, error: bool = True) -> None:
        file = self.doc.file if self.doc else "<config>"
        line = self.doc.line(path) if self.doc else 0
        severity: Severity = "error" if error else "warning"
        self.problems.append(Problem(file, line, format_path(path), message, severity))


def plan_models(
    config: ConfigSpec,
    doc: Located | None,
    providers: Mapping[str, ProviderKind],
    *,
    env: Mapping[str, str],
    strict_env: bool,
) -> tuple[ModelTable, list[Problem]]:
    ctx = _Context(config, doc, providers, env, strict_env, [])
    deployments: list[Deployment] = []
    seen_ids: set[str] = set()
    for i, entry in enumerate(config.model_list):
        deployment = _deployment(ctx, ("model_list", i), entry)
        if deployment is None:
            continue
        if deployment.id in seen_ids:
            ctx.report(
                ("model_list", i, "model_info", "id"), f"duplicate deployment id {deployment.id!r}"
            )
        seen_ids.add(deployment.id)
        deployments.append(deployment)
    table = _assemble(ctx, deployments)
    return table, ctx.problems


def plan_deployment(
    entry: ModelEntry,
    config: ConfigSpec,
    providers: Mapping[str, ProviderKind],
    *,
    env: Mapping[str, str],
    where: tuple[PathKey, ...] = (),
) -> tuple[Deployment | None, list[Problem]]:
    """One deployment outside the config file (a database row), with the startup
    checks: unknown provider, no base URL, no credential are errors. `where`
    prefixes the problems' paths (e.g. the request body's field)."""
    ctx = _Context(config, None, providers, env, True, [])
    deployment = _deployment(ctx, where, entry)
    if any(p.severity == "error" for p in ctx.problems):
        deployment = None
    return deployment, ctx.problems


def assemble_table(config: ConfigSpec, deployments: Iterable[Deployment]) -> ModelTable:
    """Deployments (in order) grouped by name, with the config's aliases resolved
    against all of them. An alias whose group is gone is left out."""
    ctx = _Context(config, None, {}, {}, False, [])
    return _assemble(ctx, deployments)


def _assemble(ctx: _Context, deployments: Iterable[Deployment]) -> ModelTable:
    grouped: dict[str, list[Deployment]] = {}
    for deployment in deployments:
        grouped.setdefault(deployment.group, []).append(deployment)
    groups = {name: ModelGroup(name, tuple(ds)) for name, ds in grouped.items()}
    aliases = _aliases(ctx, groups)
    wildcards = sorted(
        (g for g in groups.values() if g.is_wildcard),
        key=lambda g: len(g.name.replace("*", "")),
        reverse=True,
    )
    return ModelTable(MappingProxyType(groups), MappingProxyType(aliases), tuple(wildcards))


def _aliases(ctx: _Context, groups: Mapping[str, ModelGroup]) -> dict[str, tuple[str, bool]]:
    out: dict[str, tuple[str, bool]] = {}
    for alias, target in ctx.config.router_settings.model_group_alias.items():
        path = ("router_settings", "model_group_alias", alias)
        if isinstance(target, dict):
            name, hidden = target.get("model"), bool(target.get("hidden", False))
        else:
            name, hidden = target, False
        if not isinstance(name, str) or name not in groups:
            ctx.report(path, f"alias {alias!r} points at unknown model group {name!r}")
            continue
        out[alias] = (name, hidden)
    return out


def _deployment(ctx: _Context, where: tuple[PathKey, ...], entry: ModelEntry) -> Deployment | None:
    if entry.litellm_params is not None and entry.tianji_params is not None:
        ctx.report(where, "set litellm_params or tianji_params, not both")
        return None
    params = entry.litellm_params or entry.tianji_params
    if params is None:
        ctx.report(where, "missing litellm_params")
        return None
    where = (*where, "litellm_params" if entry.litellm_params else "tianji_params")
    provider_name, model = _split_model(params)
    provider = ctx.providers.get(provider_name)
    if provider is None:
        ctx.report(
            (*where, "model"), f"unknown provider {provider_name!r} in model {params.model!r}"
        )
        return None
    api_base = params.api_base or _first_env(ctx.env, provider.base_url_env) or provider.base_url
    if not api_base:
        ctx.report(
            (*where, "api_base"),
            f"provider {provider.name!r} has no default base URL: set api_base",
        )
        return None
    api_key = params.api_key or _first_env(ctx.env, provider.key_env)
    if api_key is None and provider.auth.kind != "none" and provider.auth.required:
        wanted = " or ".join(provider.key_env) or "api_key"
        ctx.report(
            (*where, "api_key"),
            f"deployment {entry.model_name!r} has no key for {provider.name!r}: "
            f"set api_key or {wanted}",
            error=ctx.strict_env,
        )
    deployment = _build(ctx, entry, params, provider, model, api_base.rstrip("/"), api_key)
    for message in _adapter_problems(deployment, ctx.env):
        ctx.report(where, f"deployment {entry.model_name!r}: {message}", error=ctx.strict_env)
    return deployment


def _adapter_problems(deployment: Deployment, env: Mapping[str, str]) -> list[str]:
    """The adapter's own configuration checks (AWS credentials, a Vertex project, ...),
    so they fail `tianji check` rather than the first request."""
    try:
        adapter = adapter_for(deployment.provider.adapter)
    except Exception:  # a broken adapter is reported by plan_providers
        return []
    check = getattr(adapter, "check", None)
    return list(check(deployment, env)) if check is not None else []


def _build(
    ctx: _Context,
    entry: ModelEntry,
    params: ModelParams,
    provider: ProviderKind,
    model: str,
    api_base: str,
    api_key: str | None,
) -> Deployment:
    timeouts, stream_timeouts = _timeouts(ctx.config, params)
    headers, query = _auth(provider, params, api_key)
    defaults = {
        f: getattr(params, f) for f in REQUEST_DEFAULT_FIELDS if getattr(params, f) is not None
    }
    if params.extra_body:
        defaults.update(params.extra_body)
    drop = (
        params.drop_params
        if params.drop_params is not None
        else ctx.config.litellm_settings.drop_params
    )
    return Deployment(
        id=str(entry.model_info.get("id") or _stable_id(entry)),
        group=entry.model_name,
        provider=provider,
        model=model,
        api_base=api_base,
        api_key=api_key,
        api_version=params.api_version or _first_env(ctx.env, provider.api_version_env),
        params=params,
        timeouts=timeouts,
        stream_timeouts=stream_timeouts,
        drop_params=drop,
        request_defaults=MappingProxyType(defaults),
        headers=headers,
        query=query,
        weight=float(params.weight if params.weight is not None else 1.0),
        model_info=MappingProxyType(dict(entry.model_info)),
    )


def _split_model(params: ModelParams) -> tuple[str, str]:
    """`openrouter/anthropic/x` -> (openrouter, anthropic/x); no slash -> openai."""
    if params.custom_llm_provider:
        prefix = params.custom_llm_provider + "/"
        model = params.model[len(prefix) :] if params.model.startswith(prefix) else params.model
        return params.custom_llm_provider, model
    provider, sep, model = params.model.partition("/")
    return (provider, model) if sep else ("openai", params.model)


def _first_env(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


def _timeouts(config: ConfigSpec, params: ModelParams) -> tuple[Timeouts, Timeouts]:
    read = (
        params.timeout
        or config.router_settings.timeout
        or config.litellm_settings.request_timeout
        or DEFAULT_TIMEOUT
    )
    stream = params.stream_timeout or config.router_settings.stream_timeout or read
    return Timeouts(min(CONNECT_TIMEOUT, read), read), Timeouts(
        min(CONNECT_TIMEOUT, stream), stream
    )


def _auth(
    provider: ProviderKind, params: ModelParams, api_key: str | None
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    headers = list(provider.headers.items())
    query: list[tuple[str, str]] = []
    auth = provider.auth
    if api_key is not None:
        if auth.kind == "bearer":
            headers.append(("authorization", f"Bearer {api_key}"))
        elif auth.kind == "header" and auth.name:
            headers.append((auth.name.lower(), f"{auth.prefix}{api_key}"))
        elif auth.kind == "query" and auth.name:
            query.append((auth.name, api_key))
    for header, field in provider.param_headers.items():
        value: Any = getattr(params, field, None)
        if value:
            headers.append((header.lower(), str(value)))
    for name, value in {**(params.headers or {}), **(params.extra_headers or {})}.items():
        headers.append((name.lower(), value))
    return tuple(headers), tuple(query)


def _stable_id(entry: ModelEntry) -> str:
    """A deployment id that survives restarts: hash of its name and params (key excluded)."""
    params = msgspec.structs.asdict(entry.litellm_params or entry.tianji_params)  # type: ignore[arg-type]
    params.pop("api_key", None)
    raw = msgspec.json.encode([entry.model_name, params], order="sorted")
    return hashlib.sha256(raw).hexdigest()[:16]
