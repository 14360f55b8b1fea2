"""OpenAI-compatible providers whose bearer must first be obtained: GigaChat, SAP AI Core
and Snowflake Cortex (providers.md §2.1).

The wire format is OpenAI's (request built, response and stream relayed untouched, as
in `openai_compat`); only the `Authorization` header differs. The async hook `prepare`
puts `Bearer <token>` on the call, and which flow yields the token is data, keyed by
the providers.yaml entry name (`_FLOWS`):

* gigachat - `api_key` (GIGACHAT_CREDENTIALS) is the base64 `client_id:secret`; it is
  POSTed as `Authorization: Basic` with a fresh `RqUID` and form `scope=...` to
  GIGACHAT_AUTH_URL (default Sber's `/api/v2/oauth`), scope GIGACHAT_SCOPE (default
  GIGACHAT_API_PERS). The answer's `expires_at` is epoch milliseconds.
* sap - OAuth2 client credentials (`client_id`/`client_secret` from litellm_params, else
  AICORE_CLIENT_ID/AICORE_CLIENT_SECRET) at `{AICORE_AUTH_URL}/oauth/token`; plus the
  `AI-Resource-Group` header (AICORE_RESOURCE_GROUP, default `default`) and
  `?api-version=` (the deployment's api_version, default 2024-02-01).
* snowflake - no exchange: `api_key` (SNOWFLAKE_JWT) is a key-pair JWT sent as it is;
  the token-type header is static in providers.yaml. `{account}` in the base URL is
  filled from SNOWFLAKE_ACCOUNT_ID.

Why environment variables for the token URL and SAP's extras: litellm_params has no
field for them (and SAP's auth host differs from its inference host, so it cannot be
derived from api_base). The adapter reads them when a request is made, from the
mapping it was built with (os.environ by default; tests inject their own), so a test
can point the token endpoint at 127.0.0.1. Tokens are cached per (token URL,
credentials) until 60 s before they expire, with one shared refresh (TokenCache).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import urlencode

import msgspec

from tianji.compile.model import Deployment
from tianji.errors import TianjiError
from tianji.providers.base import Call, Send
from tianji.providers.errors import provider_error
from tianji.providers.openai_compat import OpenAICompatAdapter
from tianji.providers.token_cache import TokenCache
from tianji.upstream.types import Timeouts, UpstreamRequest

__all__ = ["GIGACHAT_AUTH_URL", "SAP_API_VERSION", "OAuthOpenAIAdapter", "flow_for"]

Flow = Literal["basic_oauth", "client_credentials", "static_jwt"]

# Which token flow a providers.yaml entry uses.
_FLOWS: Mapping[str, Flow] = {
    "gigachat": "basic_oauth",
    "sap": "client_credentials",
    "snowflake": "static_jwt",
}

GIGACHAT_AUTH_URL = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
GIGACHAT_SCOPE = "GIGACHAT_API_PERS"
SAP_API_VERSION = "2024-02-01"
_SAP_RESOURCE_GROUP = "default"
_ACCOUNT = "{account}"
# A token answer without any lifetime is trusted for this long.
_DEFAULT_LIFETIME = 1800.0

_decode = msgspec.json.decode


def flow_for(provider: str) -> Flow:
    """The token flow of a provider entry that names this adapter."""
    flow = _FLOWS.get(provider)
    if flow is None:
        raise TianjiError(f"oauth_openai has no token flow for provider {provider!r}")
    return flow


class OAuthOpenAIAdapter(OpenAICompatAdapter):
    name = "oauth_openai"

    def __init__(
        self, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.tokens = TokenCache(margin=60.0, clock=clock)

    # --- link-time checks --------------------------------------------------------

    def check(self, deployment: Deployment, env: Mapping[str, str]) -> list[str]:
        """Missing credentials, reported by `tianji check` instead of the first request."""
        provider = deployment.provider.name
        flow = _FLOWS.get(provider)
        if flow == "basic_oauth":
            if deployment.api_key:
                return []
            return ["gigachat needs api_key or GIGACHAT_CREDENTIALS (base64 client_id:secret)"]
        if flow == "static_jwt":
            problems = []
            if not deployment.api_key:
                problems.append("snowflake needs api_key or SNOWFLAKE_JWT (a key-pair JWT)")
            if _ACCOUNT in deployment.api_base and not env.get("SNOWFLAKE_ACCOUNT_ID"):
                problems.append("snowflake needs SNOWFLAKE_ACCOUNT_ID or api_base")
            return problems
        if flow == "client_credentials":
            client_id, secret = _sap_client(deployment, env)
            problems = []
            if not client_id or not secret:
                problems.append(
                    "sap needs client_id and client_secret "
                    "(litellm_params or AICORE_CLIENT_ID / AICORE_CLIENT_SECRET)"
                )
            if not env.get("AICORE_AUTH_URL"):
                problems.append("sap needs AICORE_AUTH_URL (the OAuth server of the service key)")
            return problems
        return [f"oauth_openai has no token flow for provider {provider!r}"]

    # --- the token step ----------------------------------------------------------

    async def prepare(self, call: Call, send: Send) -> None:
        """Obtain the bearer for this call (cached) and attach it, replacing any earlier one
        (a retried call runs prepare again)."""
        deployment = call.deployment
        flow = flow_for(deployment.provider.name)
        if flow == "static_jwt":
            token = _require(deployment.api_key, "snowflake: no JWT (api_key or SNOWFLAKE_JWT)")
        else:
            url, form, headers = self._token_request(flow, deployment)
            timeouts = Timeouts(deployment.timeouts.connect, min(deployment.timeouts.read, 30.0))

            async def fetch() -> tuple[str, float]:
                # RqUID must be unique per token request, so it is minted here.
                sent = (
                    [*headers, ("rquid", str(uuid.uuid4()))] if flow == "basic_oauth" else headers
                )
                request = UpstreamRequest("POST", url, sent, urlencode(form).encode())
                return await self._exchange(deployment.provider.name, request, send, timeouts)

            token = await self.tokens.get(_cache_key(url, form, headers), fetch)
        kept = [h for h in call.extra_headers if h[0].lower() != "authorization"]
        if flow == "client_credentials":
            group = self.env.get("AICORE_RESOURCE_GROUP") or _SAP_RESOURCE_GROUP
            kept = [h for h in kept if h[0].lower() != "ai-resource-group"]
            kept.append(("ai-resource-group", group))
        call.extra_headers = (*kept, ("authorization", f"Bearer {token}"))

    def _token_request(
        self, flow: Flow, deployment: Deployment
    ) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
        """(token URL, form, headers) of the exchange; RqUID is added per request."""
        headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ]
        if flow == "basic_oauth":
            credentials = _require(
                deployment.api_key, "gigachat: no credentials (api_key or GIGACHAT_CREDENTIALS)"
            )
            url = self.env.get("GIGACHAT_AUTH_URL") or GIGACHAT_AUTH_URL
            scope = self.env.get("GIGACHAT_SCOPE") or GIGACHAT_SCOPE
            headers.append(("authorization", f"Basic {credentials}"))
            return url, {"scope": scope}, headers
        client_id, secret = _sap_client(deployment, self.env)
        auth_url = _require(self.env.get("AICORE_AUTH_URL"), "sap: AICORE_AUTH_URL is not set")
        form = {
            "grant_type": "client_credentials",
            "client_id": _require(client_id, "sap: no client_id (or AICORE_CLIENT_ID)"),
            "client_secret": _require(secret, "sap: no client_secret (or AICORE_CLIENT_SECRET)"),
        }
        return f"{auth_url.rstrip('/')}/oauth/token", form, headers

    async def _exchange(
        self, provider: str, request: UpstreamRequest, send: Send, timeouts: Timeouts
    ) -> tuple[str, float]:
        response = await send(request, timeouts)
        try:
            body = await response.read()
        finally:
            await response.aclose()
        if response.status >= 400:
            detail = body.decode("utf-8", "replace").strip()[:300]
            # A refused credential is the deployment's authentication failure (401).
            status = 401 if response.status in (400, 401, 403) else response.status
            raise provider_error(provider, status, f"token exchange failed: {detail}")
        try:
            data = _decode(body)
            token = str(data["access_token"])
        except (msgspec.DecodeError, KeyError, TypeError):
            raise provider_error(
                provider, 502, "token endpoint answered without access_token"
            ) from None
        return token, self._expiry(data)

    def _expiry(self, data: dict[str, object]) -> float:
        """Absolute expiry: `expires_at` (GigaChat: epoch ms) or now + `expires_in`."""
        expires_at = data.get("expires_at")
        if isinstance(expires_at, int | float):
            # Epoch seconds stay below 1e11 until the year 5138; larger values are ms.
            return float(expires_at) / 1000 if expires_at > 1e11 else float(expires_at)
        expires_in = data.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else _DEFAULT_LIFETIME
        return self.tokens.clock() + lifetime

    # --- requests ------------------------------------------------------------------

    def url(self, call: Call) -> str:
        url = super().url(call)
        provider = call.deployment.provider.name
        if _ACCOUNT in url and _FLOWS.get(provider) == "static_jwt":
            account = _require(
                self.env.get("SNOWFLAKE_ACCOUNT_ID"), "snowflake: SNOWFLAKE_ACCOUNT_ID is not set"
            )
            url = url.replace(_ACCOUNT, account.lower())
        if _FLOWS.get(provider) == "client_credentials" and "api-version=" not in url:
            version = call.deployment.api_version or SAP_API_VERSION
            url += ("&" if "?" in url else "?") + urlencode({"api-version": version})
        return url

    def build_request(self, call: Call) -> UpstreamRequest:
        if not any(name.lower() == "authorization" for name, _ in call.extra_headers):
            raise TianjiError(
                f"{call.deployment.provider.name}: no access token for this call "
                "(the gateway did not run the adapter's prepare hook)"
            )
        return super().build_request(call)

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        if status == 401:
            # Revoked or expired early: the next attempt exchanges again.
            self._forget(call)
        return super().error_from_status(call, status, headers, body)

    def _forget(self, call: Call) -> None:
        flow = _FLOWS.get(call.deployment.provider.name)
        if flow is None or flow == "static_jwt":
            return
        try:
            url, form, headers = self._token_request(flow, call.deployment)
        except TianjiError:
            return
        self.tokens.invalidate(_cache_key(url, form, headers))


def _cache_key(
    url: str, form: Mapping[str, str], headers: list[tuple[str, str]]
) -> tuple[str, str, str]:
    """Tokens are per token URL and credentials (form + Basic header)."""
    basic = next((v for k, v in headers if k == "authorization"), "")
    return url, urlencode(sorted(form.items())), basic


def _sap_client(deployment: Deployment, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    params = deployment.params
    return (
        params.client_id or env.get("AICORE_CLIENT_ID"),
        params.client_secret or env.get("AICORE_CLIENT_SECRET"),
    )


def _require(value: str | None, message: str) -> str:
    """A credential the call cannot go without; its absence is an authentication error."""
    if not value:
        provider = message.partition(":")[0]
        raise provider_error(provider, 401, message)
    return value
