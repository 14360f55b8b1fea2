"""spec -> plan -> app: the one pipeline that `tianji check` and `tianji serve` share.

load   (tianji.spec)         YAML -> Structs, every problem with file:line
link + plan (this package)   names resolved, defaults applied -> CompiledGateway
build  (compile.build)       CompiledGateway -> Litestar app (opens nothing)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from litestar import Litestar

from tianji.api import MULTIPART_OPERATIONS, OPERATIONS
from tianji.api.admin.model_sync import ModelSync
from tianji.api.runtime import Runtime
from tianji.compile.build import build_app
from tianji.compile.model import CompiledGateway, GatewaySettings
from tianji.compile.models import plan_models
from tianji.compile.providers import plan_providers
from tianji.compile.routes import plan_routes
from tianji.guards.auth import DEFAULT_KEY_HEADERS, MasterKeyAuthenticator
from tianji.guards.keys import KeyAuthenticator, ModelAccessGuard
from tianji.providers import ADAPTER_PATHS, adapter_for
from tianji.router import Router
from tianji.spec.config import ConfigSpec
from tianji.spec.loader import Specs, default_spec_dir, load_specs
from tianji.spec.source import Located, Problem
from tianji.store import Store, parse_database_url

__all__ = ["Built", "build", "compile_specs"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class Built:
    gateway: CompiledGateway
    runtime: Runtime
    app: Litestar


def build(
    config: Path | None,
    *,
    routes: Path | None = None,
    providers: Path | None = None,
    env: Mapping[str, str] | None = None,
    strict_env: bool = True,
) -> tuple[Built | None, list[Problem]]:
    """Load, link, plan and build. Returns None when any problem is an error."""
    spec_dir = default_spec_dir()
    specs, problems = load_specs(
        routes or spec_dir / "routes.yaml",
        providers or spec_dir / "providers.yaml",
        config,
        env=env,
        strict_env=strict_env,
    )
    if specs is None:
        return None, problems
    gateway, found = compile_specs(specs, strict_env=strict_env)
    problems += found
    if any(p.severity == "error" for p in problems):
        return None, problems
    runtime = Runtime(
        gateway=gateway,
        auth=MasterKeyAuthenticator(gateway.settings.master_key, gateway.settings.key_headers),
        router=Router(),
        openai_params=gateway.providers["openai"].params if "openai" in gateway.providers else {},
    )
    store = make_store(specs, gateway.settings)
    if store is not None:
        general = specs.config.general_settings
        runtime.store = store
        runtime.auth = KeyAuthenticator(
            store,
            gateway.settings.master_key,
            gateway.settings.key_headers,
            cache_ttl=general.user_api_key_cache_ttl,
        )
        runtime.guard = ModelAccessGuard(gateway.models)
        runtime.model_sync = ModelSync(
            runtime,
            config=specs.config,
            env=specs.env,
            interval=general.proxy_config_reload_interval_seconds,
        )
    return Built(gateway, runtime, build_app(gateway, runtime)), problems


def database_url(specs: Specs) -> str | None:
    """general_settings.database_url, else env DATABASE_URL (LiteLLM's), else None
    (the default SQLite file)."""
    return specs.config.general_settings.database_url or specs.env.get("DATABASE_URL") or None


def make_store(specs: Specs, settings: GatewaySettings) -> Store | None:
    """The store of virtual keys: only with a master key (without one the gateway is
    open and there is nobody to mint keys). Opens nothing: Runtime.start does."""
    if settings.master_key is None:
        return None
    general = specs.config.general_settings
    return Store(
        database_url(specs),
        redis_url=general.redis_url,
        pool_size=general.database_connection_pool_limit,
        connect_timeout=general.database_connection_timeout,
    )


def compile_specs(specs: Specs, *, strict_env: bool) -> tuple[CompiledGateway, list[Problem]]:
    settings = _settings(specs.config)
    problems: list[Problem] = []
    providers, found = plan_providers(
        specs.providers, specs.providers_doc, adapters=ADAPTER_PATHS, load_adapter=adapter_for
    )
    problems += found
    routes, found = plan_routes(
        specs.routes,
        specs.routes_doc,
        operations=OPERATIONS,
        default_body_mb=specs.config.general_settings.max_request_size_mb,
        multipart_body_mb=specs.config.general_settings.max_multipart_size_mb,
        multipart_operations=MULTIPART_OPERATIONS,
    )
    problems += found
    models, found = plan_models(
        specs.config, specs.config_doc, providers, env=specs.env, strict_env=strict_env
    )
    problems += found
    if settings.master_key is not None and specs.config_doc is not None:
        try:
            parse_database_url(database_url(specs))
        except ValueError as exc:
            where = ("general_settings", "database_url")
            problems.append(specs.config_doc.problem(where, str(exc)))
    if settings.master_key is None and specs.config_doc is not None:
        problems.append(
            _warning(
                specs.config_doc,
                ("general_settings",),
                "no master_key: every request is accepted without a key",
            )
        )
    gateway = CompiledGateway(tuple(routes), models, MappingProxyType(providers), settings)
    return gateway, problems


def _settings(config: ConfigSpec) -> GatewaySettings:
    general = config.general_settings
    headers: tuple[str, ...] = DEFAULT_KEY_HEADERS
    if general.litellm_key_header_name:
        headers = (general.litellm_key_header_name.lower(), *headers)
    defaults = {
        op: model
        for op, model in (
            ("text_completion", general.completion_model),
            ("embeddings", general.embedding_model),
            ("moderation", general.moderation_model),
            ("image_generation", general.image_generation_model),
        )
        if model
    }
    return GatewaySettings(
        master_key=general.master_key,
        key_headers=headers,
        max_request_bytes=int(general.max_request_size_mb * _MB),
        max_multipart_bytes=int(general.max_multipart_size_mb * _MB),
        drop_params=config.litellm_settings.drop_params,
        default_models=MappingProxyType(defaults),
        database_url=general.database_url,
        redis_url=general.redis_url,
        available_teams=tuple(general.available_teams),
    )


def _warning(doc: Located, path: tuple[str | int, ...], message: str) -> Problem:
    return doc.problem(path, message, "warning")
