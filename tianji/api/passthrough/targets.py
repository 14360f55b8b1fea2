"""Where each provider passthrough goes, and with which credentials (routes.md §4).

Credentials come from the first deployment of that provider in `model_list`
(one marked `use_in_pass_through: true` first), together with that
deployment's base URL, so a key is never sent to a host it was not configured
for; else from the provider's conventional environment variables. A base URL
loses a trailing API version (`/v1`, `/v1beta`): passthrough clients send the
whole path (`/anthropic/v1/messages`), as they would to the provider itself.

Three credential kinds: static headers (a key), an adapter's token hook
(`prepare`: Vertex AI's OAuth2, watsonx's IAM exchange; the deployment's
adapter mints the token), and SigV4 (Bedrock, signed over the exact request).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from tianji.compile.model import Deployment, ModelTable, ProviderKind
from tianji.errors import InvalidRequest
from tianji.providers.anthropic import OAUTH_BETA, anthropic_headers
from tianji.upstream.types import Timeouts

__all__ = ["TARGETS", "Credentials", "Target", "first_deployment", "static_credentials"]

_VERSION_SUFFIX = re.compile(r"/v\d+(beta\d*)?$")
DEFAULT_TIMEOUTS = Timeouts(connect=5.0, read=600.0)


@dataclass(frozen=True, slots=True)
class Target:
    # Deployments of this provider kind lend their credentials.
    provider: str
    default_base: str | None = None
    base_env: tuple[str, ...] = ()
    key_env: tuple[str, ...] = ()
    # "key": a static key header; "token": the deployment adapter's `prepare` hook;
    # "sigv4": AWS signing.
    kind: Literal["key", "token", "sigv4"] = "key"
    # How an environment key is sent: "bearer", or the name of the header carrying it.
    auth: str = "bearer"
    key_required: bool = True
    # Sent when the client did not set them.
    default_headers: tuple[tuple[str, str], ...] = ()
    # Query parameters of the client never forwarded (Gemini's `?key=`).
    drop_query: tuple[str, ...] = ()
    # The client may authenticate with `?key=` (Gemini only, guards.md §1.1).
    query_key: bool = False


@dataclass(frozen=True, slots=True)
class Credentials:
    base: str
    headers: tuple[tuple[str, str], ...]
    # Header names whose client value wins (static defaults such as anthropic-version).
    soft: frozenset[str]
    query: tuple[tuple[str, str], ...]
    timeouts: Timeouts
    # Redacted from relayed error bodies.
    secret: str | None


TARGETS: Mapping[str, Target] = {
    "anthropic": Target(
        "anthropic",
        "https://api.anthropic.com",
        ("ANTHROPIC_API_BASE",),
        ("ANTHROPIC_API_KEY",),
        auth="x-api-key",
        default_headers=(("anthropic-version", "2023-06-01"),),
    ),
    "gemini": Target(
        "gemini",
        "https://generativelanguage.googleapis.com",
        ("GEMINI_API_BASE",),
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        auth="x-goog-api-key",
        drop_query=("key",),
        query_key=True,
    ),
    "vertex_ai": Target("vertex_ai", kind="token"),
    "bedrock": Target("bedrock", kind="sigv4"),
    "azure": Target("azure", None, ("AZURE_API_BASE",), ("AZURE_API_KEY",), auth="api-key"),
    "azure_ai": Target(
        "azure_ai", None, ("AZURE_AI_API_BASE",), ("AZURE_AI_API_KEY",), auth="api-key"
    ),
    "openai": Target(
        "openai", "https://api.openai.com", ("OPENAI_API_BASE", "OPENAI_BASE_URL"),
        ("OPENAI_API_KEY",),
    ),
    "cohere": Target(
        "cohere", "https://api.cohere.com", ("COHERE_API_BASE",), ("COHERE_API_KEY", "CO_API_KEY")
    ),
    "mistral": Target(
        "mistral", "https://api.mistral.ai", ("MISTRAL_API_BASE",), ("MISTRAL_API_KEY",)
    ),
    "vllm": Target(
        "hosted_vllm", None, ("HOSTED_VLLM_API_BASE",), ("HOSTED_VLLM_API_KEY",), key_required=False
    ),
    # An IAM access token in WATSONX_TOKEN is used as it is; an API key needs a watsonx
    # deployment, whose adapter exchanges it.
    "watsonx": Target(
        "watsonx", "https://us-south.ml.cloud.ibm.com", ("WATSONX_URL",), ("WATSONX_TOKEN",),
        kind="token",
    ),
}  # fmt: skip


def first_deployment(models: ModelTable, provider: str) -> Deployment | None:
    """A deployment marked `use_in_pass_through`, else the first one of that provider."""
    found: Deployment | None = None
    for group in models.groups.values():
        for deployment in group.deployments:
            if deployment.provider.name != provider:
                continue
            if deployment.params.use_in_pass_through:
                return deployment
            found = found or deployment
    return found


def strip_version(base: str) -> str:
    return _VERSION_SUFFIX.sub("", base.rstrip("/"))


def from_deployment(target: Target, deployment: Deployment) -> Credentials:
    # Anthropic OAuth tokens go as Bearer with their beta, exactly as the adapter sends them.
    own = anthropic_headers(deployment) if target.provider == "anthropic" else deployment.headers
    present = {name for name, _ in own}
    defaults = [(n, v) for n, v in target.default_headers if n not in present]
    soft = {n.lower() for n in deployment.provider.headers} | {n for n, _ in defaults}
    return Credentials(
        base=strip_version(deployment.api_base),
        headers=(*defaults, *own),
        soft=frozenset(soft),
        query=deployment.query,
        timeouts=deployment.timeouts,
        secret=deployment.api_key,
    )


def static_credentials(
    name: str,
    target: Target,
    models: ModelTable,
    providers: Mapping[str, ProviderKind],
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """A key target's base URL and headers: from a deployment, else the environment."""
    deployment = first_deployment(models, target.provider)
    if deployment is not None:
        return from_deployment(target, deployment)
    env = os.environ if env is None else env
    # A token target's own list only: the provider's other key variables hold keys
    # that need an exchange (watsonx API keys), not ready tokens.
    kind = providers.get(target.provider) if target.kind == "key" else None
    key_env = tuple(dict.fromkeys((*(kind.key_env if kind else ()), *target.key_env)))
    base_env = tuple(dict.fromkeys((*(kind.base_url_env if kind else ()), *target.base_env)))
    base = _first(env, base_env) or target.default_base
    key = _first(env, key_env)
    missing = []
    if base is None:
        missing.append(f"a base URL ({' or '.join(base_env)})")
    if key is None and target.key_required:
        missing.append(f"a key ({' or '.join(key_env)})")
    if missing:
        raise not_configured(name, target, " and ".join(missing))
    assert base is not None
    headers = list(target.default_headers)
    if key is not None:
        headers += _key_headers(target, key)
    return Credentials(
        base=strip_version(base),
        headers=tuple(headers),
        soft=frozenset(n for n, _ in target.default_headers),
        query=(),
        timeouts=DEFAULT_TIMEOUTS,
        secret=key,
    )


def not_configured(name: str, target: Target, missing: str) -> InvalidRequest:
    return InvalidRequest(
        f"the /{name} passthrough is not configured: add a {target.provider}/... deployment "
        f"to model_list or set {missing}",
        code="passthrough_not_configured",
    )


def _key_headers(target: Target, key: str) -> list[tuple[str, str]]:
    if target.provider == "anthropic" and key.startswith("sk-ant-oat"):
        # Claude subscription OAuth tokens: Bearer plus the OAuth beta (providers.md §2.2).
        return [("authorization", f"Bearer {key}"), ("anthropic-beta", OAUTH_BETA)]
    if target.auth == "bearer":
        return [("authorization", f"Bearer {key}")]
    return [(target.auth, key)]


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)
