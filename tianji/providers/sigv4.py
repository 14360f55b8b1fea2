"""AWS Signature Version 4 for the AWS adapters (Bedrock, SageMaker), from the spec.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html

A signature covers the method, the canonical path and query, the signed headers
and the SHA-256 of the exact body bytes, under a key derived from the secret,
the date, the region and the service. It is only valid for ~5 minutes, so the
adapters sign inside `build_request`, which runs once per attempt: a retry is
signed again with a fresh time.

Credentials come from the deployment (`aws_access_key_id`, `aws_secret_access_key`,
`aws_session_token`) or else the conventional environment variables. Not
supported: STS AssumeRole (`aws_role_name`), shared-config profiles
(`aws_profile_name`), instance/container metadata credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from tianji.errors import AuthenticationFailed
from tianji.spec.config import ModelParams

__all__ = [
    "AwsCredentials",
    "aws_credentials",
    "aws_problems",
    "aws_region",
    "canonical_path",
    "canonical_query",
    "sign",
    "sign_for",
    "signing_key",
    "utc_now",
]

ALGORITHM = "AWS4-HMAC-SHA256"
REGION_ENV = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
DEFAULT_REGION = "us-east-1"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Hop-by-hop and tracing headers that proxies add or rewrite: never signed (as the AWS SDKs).
_UNSIGNED = frozenset(
    {"connection", "expect", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
    | {"user-agent", "x-amzn-trace-id", "traceparent", "tracestate", "baggage"}
    | {"proxy-authenticate", "proxy-authorization", "authorization"}
)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key: str
    secret_key: str
    session_token: str | None = None


def utc_now() -> datetime:
    """The signing time. Tests replace this function to freeze the clock."""
    return datetime.now(UTC)


def aws_credentials(params: ModelParams, env: Mapping[str, str] | None = None) -> AwsCredentials:
    """Keys from the deployment, else the environment; both halves must come from one place."""
    env = os.environ if env is None else env
    if params.aws_access_key_id and params.aws_secret_access_key:
        return AwsCredentials(
            params.aws_access_key_id, params.aws_secret_access_key, params.aws_session_token
        )
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        return AwsCredentials(access, secret, env.get("AWS_SESSION_TOKEN") or None)
    raise AuthenticationFailed(
        "no AWS credentials for this deployment: set aws_access_key_id and "
        "aws_secret_access_key in litellm_params, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (profiles and AssumeRole are not supported)",
        code="missing_aws_credentials",
    )


def aws_region(params: ModelParams, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    found = params.aws_region_name or params.region_name
    return found or next((env[n] for n in REGION_ENV if env.get(n)), DEFAULT_REGION)


def aws_problems(params: ModelParams, env: Mapping[str, str], *, bearer: bool) -> list[str]:
    """What `tianji check` reports for an AWS deployment: credentials (unless a bearer
    key stands in for them) and a region (unless api_base names the endpoint)."""
    problems = []
    if not bearer:
        try:
            aws_credentials(params, env)
        except AuthenticationFailed as exc:
            problems.append(exc.message)
    region = params.aws_region_name or params.region_name or any(env.get(n) for n in REGION_ENV)
    if not region and not params.api_base:
        problems.append(
            f"no AWS region: set aws_region_name or {' / '.join(REGION_ENV)} "
            f"(requests would go to {DEFAULT_REGION})"
        )
    return problems


def canonical_path(path: str) -> str:
    """Dot segments and empty segments removed, then every segment URI-encoded once
    more. The path is already percent-encoded (a Bedrock model id's `:` is `%3A`),
    so non-S3 services sign it encoded twice (`%253A`), as AWS specifies."""
    segments = [s for s in path.split("/") if s and s != "."]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    if not kept:
        return "/"
    trailing = "/" if path.endswith("/") else ""
    return "/" + "/".join(quote(s, safe="~") for s in kept) + trailing


def canonical_query(query: str) -> str:
    """Each name and value URI-encoded (RFC 3986 unreserved kept), sorted by name then value."""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign(
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    credentials: AwsCredentials,
    region: str,
    service: str,
    when: datetime | None = None,
    content_sha256_header: bool = False,
) -> list[tuple[str, str]]:
    """The headers to send: `headers` plus `x-amz-date`, the session token (if any),
    `x-amz-content-sha256` (if asked) and `authorization`. Every given header except
    hop-by-hop ones is signed, with `host` (taken from the URL, as the transport sends it)."""
    stamp = (when or utc_now()).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload_hash = hashlib.sha256(body).hexdigest()
    out = [(n, v) for n, v in headers if n.lower() not in ("x-amz-date", "x-amz-security-token")]
    out.append(("x-amz-date", stamp))
    if credentials.session_token:
        out.append(("x-amz-security-token", credentials.session_token))
    if content_sha256_header:
        out.append(("x-amz-content-sha256", payload_hash))
    signed = _signed_headers(out, _host(url))
    names = ";".join(signed)
    parts = urlsplit(url)
    canonical = "\n".join(
        [
            method.upper(),
            canonical_path(parts.path),
            canonical_query(parts.query),
            "".join(f"{name}:{value}\n" for name, value in signed.items()),
            names,
            payload_hash,
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(credentials.secret_key, stamp[:8], region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out.append(
        (
            "authorization",
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}",
        )
    )
    return out


def sign_for(
    params: ModelParams,
    service: str,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
) -> list[tuple[str, str]]:
    """`sign` with the deployment's credentials and region, at the current time."""
    return sign(
        method,
        url,
        headers,
        body,
        credentials=aws_credentials(params),
        region=aws_region(params),
        service=service,
    )


def _signed_headers(headers: Sequence[tuple[str, str]], host: str) -> dict[str, str]:
    """Lower-case name -> trimmed value (spaces collapsed; repeats joined by commas), sorted."""
    values: dict[str, list[str]] = {"host": [host]}
    for name, value in headers:
        lowered = name.lower().strip()
        if lowered in _UNSIGNED or lowered == "host":
            continue
        values.setdefault(lowered, []).append(" ".join(value.split()))
    return {name: ",".join(values[name]) for name in sorted(values)}
