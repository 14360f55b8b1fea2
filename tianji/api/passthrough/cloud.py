"""Passthrough credentials that are not a static key: adapter-minted tokens
(Vertex AI OAuth2, watsonx IAM) and AWS SigV4 (Bedrock).

Tokens are minted by the deployment's own adapter through its `prepare` hook,
the same code and cache the chat path uses, so a passthrough call and a chat
call share one token. Bedrock requests are signed over the exact bytes that
are sent (method, URL with the client's query, headers, body).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from tianji.api.native.upstream import adapter_token_headers
from tianji.api.passthrough.targets import (
    Credentials,
    Target,
    first_deployment,
    from_deployment,
    not_configured,
    static_credentials,
    strip_version,
)
from tianji.api.runtime import Runtime
from tianji.compile.model import Deployment
from tianji.errors import AuthenticationFailed, InvalidRequest
from tianji.providers import Call, adapter_for
from tianji.providers.sigv4 import aws_region, sign_for
from tianji.spec.config import ModelParams
from tianji.upstream.types import Timeouts, UpstreamRequest

__all__ = ["bedrock_request", "token_credentials"]

_LOCATION = re.compile(r"/locations/([^/]+)/")
_VERTEX_LOCATION_ENV = ("VERTEXAI_LOCATION", "VERTEX_LOCATION")
BEDROCK_KEY_ENV = "AWS_BEARER_TOKEN_BEDROCK"


async def token_credentials(
    name: str, target: Target, runtime: Runtime, tail: str, env: Mapping[str, str] | None = None
) -> Credentials:
    """Credentials of a `token` target: the deployment's headers plus what its
    adapter's `prepare` hook adds (an `Authorization: Bearer` token)."""
    models = runtime.models
    deployment = first_deployment(models, target.provider)
    if deployment is None:
        if target.key_env:  # e.g. WATSONX_TOKEN: a ready access token
            return static_credentials(name, target, models, runtime.gateway.providers, env)
        raise not_configured(name, target, "its credentials")
    credentials = from_deployment(target, deployment)
    minted = await _minted_headers(runtime, deployment)
    names = {n for n, _ in minted}
    headers = (*[(n, v) for n, v in credentials.headers if n not in names], *minted)
    base = _vertex_base(deployment, tail, env) if target.provider == "vertex_ai" else None
    return Credentials(
        base=base or credentials.base,
        headers=headers,
        soft=credentials.soft,
        query=credentials.query,
        timeouts=credentials.timeouts,
        secret=credentials.secret,
    )


async def _minted_headers(runtime: Runtime, deployment: Deployment) -> tuple[tuple[str, str], ...]:
    adapter = adapter_for(deployment.provider.adapter)
    call = Call(operation="forward", deployment=deployment, model=deployment.model)
    return await adapter_token_headers(runtime, adapter, call)


def _vertex_base(deployment: Deployment, tail: str, env: Mapping[str, str] | None) -> str:
    """An explicit api_base wins; else the regional host of the location named in the
    path (`/v1/projects/{p}/locations/{loc}/...`), else the deployment's location."""
    if deployment.params.api_base:
        return strip_version(deployment.api_base)
    env = os.environ if env is None else env
    found = _LOCATION.search(tail)
    location = (
        found.group(1)
        if found
        else deployment.params.vertex_location
        or next((env[n] for n in _VERTEX_LOCATION_ENV if env.get(n)), "us-central1")
    )
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def bedrock_request(
    runtime: Runtime,
    method: str,
    tail: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    env: Mapping[str, str] | None = None,
) -> tuple[UpstreamRequest, Timeouts, str | None]:
    """The signed Bedrock request. `/agent/...` goes to the agent runtime host."""
    env = os.environ if env is None else env
    deployment = first_deployment(runtime.models, "bedrock")
    params = deployment.params if deployment is not None else ModelParams(model="bedrock/*")
    region = aws_region(params, env)
    if tail.startswith("/agent/"):
        base = f"https://bedrock-agent-runtime.{region}.amazonaws.com"
        tail = tail[len("/agent") :]
    elif deployment is not None and params.api_base:
        base = strip_version(deployment.api_base.replace("{region}", region))
    else:
        base = f"https://bedrock-runtime.{region}.amazonaws.com"
    url = base + tail + (f"?{query}" if query else "")
    api_key = deployment.api_key if deployment is not None else env.get(BEDROCK_KEY_ENV)
    timeouts = deployment.timeouts if deployment is not None else Timeouts(5.0, 600.0)
    if api_key and not (params.aws_access_key_id and params.aws_secret_access_key):
        # A Bedrock API key is a Bearer token; no signature then (as the adapter does).
        signed = [*headers, ("authorization", f"Bearer {api_key}")]
        return UpstreamRequest(method, url, signed, body), timeouts, api_key
    try:
        signed = sign_for(params, "bedrock", method, url, headers, body)
    except AuthenticationFailed as exc:
        # tianji's own missing credentials, not the caller's: not a 401 for the caller.
        raise InvalidRequest(
            f"the /bedrock passthrough is not configured: {exc.message}",
            code="passthrough_not_configured",
        ) from None
    return UpstreamRequest(method, url, signed, body), timeouts, None
