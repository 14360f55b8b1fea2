"""Google OAuth2 access tokens for Vertex AI, minted from a credentials file.

Two credential kinds are understood: a service account (`"type": "service_account"`:
an RS256-signed JWT assertion exchanged at its `token_uri` with the
`urn:ietf:params:oauth:grant-type:jwt-bearer` grant) and gcloud user credentials
(`"type": "authorized_user"`: a refresh-token grant).

Design: adapters are pure, so the I/O lives here and goes through the `Send` the
gateway hands to an adapter's `prepare(call, send)` hook (tianji.providers.base):
the token exchange shares the upstream connection pools, timeouts and error
types, and nothing here owns an HTTP client whose lifetime would be tied to one
event loop. Tests pass a Send over a real HttpTransport to a fake token endpoint
on 127.0.0.1.

A `TokenSource` caches a token until 5 minutes before it expires, and refreshes
single-flight: concurrent callers await the one exchange in progress.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tianji.errors import TianjiError
from tianji.providers.base import Send
from tianji.providers.errors import provider_error
from tianji.upstream.types import Timeouts, UpstreamRequest

__all__ = [
    "JWT_GRANT",
    "REFRESH_MARGIN",
    "SCOPE",
    "AuthorizedUser",
    "Credentials",
    "ServiceAccount",
    "TokenSource",
    "jwt_assertion",
    "load_credentials",
    "parse_credentials",
    "token_request",
]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
# Refresh this many seconds before expiry, so a token never dies mid-request.
REFRESH_MARGIN = 300
# Google issues at most 1-hour tokens for a JWT assertion.
ASSERTION_LIFETIME = 3600
TOKEN_TIMEOUTS = Timeouts(connect=5.0, read=30.0)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    client_email: str
    private_key: str = ""
    private_key_id: str | None = None
    token_uri: str = DEFAULT_TOKEN_URI
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizedUser:
    client_id: str
    client_secret: str
    refresh_token: str
    token_uri: str = DEFAULT_TOKEN_URI
    project_id: str | None = None


Credentials = ServiceAccount | AuthorizedUser


def _config_error(message: str) -> TianjiError:
    return TianjiError(f"vertex_ai credentials: {message}", status=500, code="vertex_credentials")


def parse_credentials(info: Any) -> Credentials:
    """Credentials from the parsed JSON of a key file."""
    if not isinstance(info, dict):
        raise _config_error("the credentials JSON is not an object")
    kind = info.get("type")
    try:
        if kind == "service_account":
            return ServiceAccount(
                client_email=info["client_email"],
                private_key=info["private_key"],
                private_key_id=info.get("private_key_id"),
                token_uri=info.get("token_uri") or DEFAULT_TOKEN_URI,
                project_id=info.get("project_id"),
            )
        if kind == "authorized_user":
            return AuthorizedUser(
                client_id=info["client_id"],
                client_secret=info["client_secret"],
                refresh_token=info["refresh_token"],
                token_uri=info.get("token_uri") or DEFAULT_TOKEN_URI,
                project_id=info.get("quota_project_id"),
            )
    except KeyError as missing:
        raise _config_error(f"{kind} credentials lack {missing}") from None
    raise _config_error(f"unsupported credentials type {kind!r}")


def load_credentials(source: str) -> Credentials:
    """`source` is the JSON text of a key file, or the path of one."""
    text = source.strip()
    if not text.startswith("{"):
        try:
            text = Path(text).expanduser().read_text()
        except OSError as exc:
            raise _config_error(f"cannot read {source!r}: {exc.strerror}") from None
    try:
        return parse_credentials(json.loads(text))
    except ValueError:
        raise _config_error("the credentials are not valid JSON") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_assertion(account: ServiceAccount, now: float) -> str:
    """The signed RS256 JWT that a service account exchanges for an access token."""
    header = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    issued = int(now)
    claims = {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    signing_input = f"{_b64url(msgspec.json.encode(header))}.{_b64url(msgspec.json.encode(claims))}"
    key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _config_error("the service-account private key is not an RSA key")
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def token_request(credentials: Credentials, now: float) -> UpstreamRequest:
    """The form POST to the token endpoint for these credentials."""
    if isinstance(credentials, ServiceAccount):
        form = {"grant_type": JWT_GRANT, "assertion": jwt_assertion(credentials, now)}
    else:
        form = {
            "grant_type": "refresh_token",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "refresh_token": credentials.refresh_token,
        }
    headers = [("content-type", "application/x-www-form-urlencoded")]
    return UpstreamRequest("POST", credentials.token_uri, headers, urlencode(form).encode())


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float


class TokenSource:
    """The access token of one set of credentials: cached, refreshed single-flight."""

    def __init__(
        self, credentials: Credentials, *, provider: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.credentials = credentials
        self.provider = provider
        self.exchanges = 0  # token requests sent (observability and tests)
        self._clock = clock
        self._token: _Token | None = None
        self._inflight: asyncio.Task[_Token] | None = None

    def cached(self) -> str | None:
        """The current token unless it is due for a refresh."""
        token = self._token
        return token.value if token is not None and self._clock() < token.refresh_at else None

    async def token(self, send: Send) -> str:
        cached = self.cached()
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        task = self._inflight
        # A refresh started on another (finished) event loop cannot be awaited here.
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._refresh(send))
            task.add_done_callback(self._settled)
            self._inflight = task
        # Shielded: a caller that goes away does not cancel the refresh others await.
        return (await asyncio.shield(task)).value

    def _settled(self, task: asyncio.Task[_Token]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an unawaited failure is not logged

    async def _refresh(self, send: Send) -> _Token:
        now = self._clock()
        self.exchanges += 1
        response = await send(token_request(self.credentials, now), TOKEN_TIMEOUTS)
        try:
            status, body = response.status, await response.read()
        finally:
            await response.aclose()
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if status != 200 or not isinstance(data, dict) or not data.get("access_token"):
            raise self._exchange_error(status, data, body)
        expires_in = float(data.get("expires_in") or ASSERTION_LIFETIME)
        # REFRESH_MARGIN before expiry; a short-lived token still serves half its life.
        lifetime = max(expires_in - REFRESH_MARGIN, expires_in / 2)
        token = _Token(str(data["access_token"]), now + lifetime)
        self._token = token
        return token

    def _exchange_error(self, status: int, data: Any, body: bytes) -> TianjiError:
        """A refused exchange is the deployment's authentication failure (401)."""
        if isinstance(data, dict) and data.get("error"):
            detail = f"{data.get('error')}: {data.get('error_description') or ''}".strip(": ")
        else:
            detail = body.decode("utf-8", "replace").strip()[:300] or "no access_token"
        mapped = 401 if status in (200, 400, 401, 403) else status
        return provider_error(
            self.provider, mapped, f"OAuth2 token exchange failed ({status}): {detail}"
        )
