"""The Vertex AI adapter: URLs, OAuth2 tokens minted from a generated service-account key
and checked by a fake token endpoint on 127.0.0.1, and Gemini calls sent through the
real transport to a FakeUpstream."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
import openai
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import MASTER_KEY, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import TianjiError
from tianji.providers import Call
from tianji.providers.google_auth import JWT_GRANT, SCOPE, TokenSource, load_credentials
from tianji.providers.vertex import VertexAdapter
from tianji.upstream import HttpTransport, Timeouts

FIXTURES = Path(__file__).parent / "fixtures"
EMAIL = "tianji-test@test-project.iam.gserviceaccount.com"


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenEndpoint:
    """A fake Google token endpoint: verifies the RS256 assertion with the public key
    (and its claims), or the refresh token, and issues numbered access tokens."""

    def __init__(self, public_key: rsa.RSAPublicKey, expires_in: int = 3600) -> None:
        self.public_key = public_key
        self.expires_in = expires_in
        self.claims: list[dict[str, Any]] = []
        self.headers: list[dict[str, Any]] = []
        self.issued = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, payload = endpoint.answer(self.headers.get("content-type", ""), form)
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def answer(self, content_type: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if content_type != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request", "error_description": "form expected"}
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") != "1//refresh-me" or form.get("client_id") != "cid":
                return 400, {"error": "invalid_grant", "error_description": "Bad refresh"}
        elif form.get("grant_type") == JWT_GRANT:
            problem = self.check_assertion(form.get("assertion", ""))
            if problem:
                return 400, {"error": "invalid_grant", "error_description": problem}
        else:
            return 400, {"error": "unsupported_grant_type"}
        self.issued += 1
        token = f"ya29.test-token-{self.issued}"
        return 200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}

    def check_assertion(self, assertion: str) -> str | None:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        try:
            self.public_key.verify(
                _b64decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return "Invalid JWT Signature."
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(claims_b64))
        self.headers.append(header)
        self.claims.append(claims)
        if header.get("alg") != "RS256":
            return "bad alg"
        if (claims["iss"], claims["scope"], claims["aud"]) != (EMAIL, SCOPE, self.url):
            return "Invalid JWT claims."
        if not 0 < claims["exp"] - claims["iat"] <= 3600:
            return "Invalid JWT lifetime."
        return None

    def __enter__(self) -> TokenEndpoint:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def tokens(rsa_key: rsa.RSAPrivateKey) -> Iterator[TokenEndpoint]:
    with TokenEndpoint(rsa_key.public_key()) as endpoint:
        yield endpoint


def _service_account(
    tmp_path: Path, key: rsa.RSAPrivateKey, token_uri: str, project: str = "sa-project"
) -> Path:
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "kid-123",
        "private_key": _pem(key),
        "client_email": EMAIL,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return path


@pytest.fixture(autouse=True)
def _no_vertex_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "VERTEXAI_PROJECT",
        "VERTEX_PROJECT",
        "VERTEXAI_LOCATION",
        "VERTEX_LOCATION",
        "VERTEXAI_CREDENTIALS",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        monkeypatch.delenv(name, raising=False)


def _deployment(tmp_path: Path, params: str) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(
        config, env={}, strict_env=False
    )  # translation tests: config checks elsewhere
    assert built is not None, [p.render() for p in problems]
    d: Deployment = built.gateway.models.groups["m"].deployments[0]
    return d


def _call(d: Deployment, body: dict[str, Any], operation: str = "chat", **kw: Any) -> Call:
    return Call(operation, d, d.model, body=body, **kw)


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("params", "url"),
    [
        (
            "vertex_project: p1, vertex_location: europe-west4",
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/"
            "europe-west4/publishers/google/models/gemini-2.5-pro:generateContent",
        ),
        (
            "vertex_project: p1, vertex_location: global",
            "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/"
            "google/models/gemini-2.5-pro:generateContent",
        ),
        (
            "vertex_project: p1, api_base: 'http://127.0.0.1:9/'",
            "http://127.0.0.1:9/v1/projects/p1/locations/us-central1/publishers/google/models/"
            "gemini-2.5-pro:generateContent",
        ),
    ],
)
def test_urls(tmp_path: Path, params: str, url: str) -> None:
    d = _deployment(tmp_path, f"{{model: vertex_ai/gemini-2.5-pro, {params}}}")
    assert VertexAdapter().url(_call(d, {})) == url


def test_project_and_location_fallbacks(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = _service_account(tmp_path, rsa_key, "http://127.0.0.1:9/token")
    d = _deployment(
        tmp_path, f"{{model: vertex_ai/gemini-2.5-flash, vertex_credentials: {key_file}}}"
    )
    adapter = VertexAdapter()
    streamed = adapter.url(_call(d, {}, stream=True))
    # The project of the key file; the default location; the streaming method.
    assert streamed == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/sa-project/locations/"
        "us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    monkeypatch.setenv("VERTEXAI_PROJECT", "env-project")
    monkeypatch.setenv("VERTEXAI_LOCATION", "asia-northeast1")
    assert adapter.url(_call(d, {}, operation="embeddings")) == (
        "https://asia-northeast1-aiplatform.googleapis.com/v1/projects/env-project/locations/"
        "asia-northeast1/publishers/google/models/gemini-2.5-flash:predict"
    )


def test_build_request_needs_a_prepared_token(tmp_path: Path) -> None:
    d = _deployment(tmp_path, "{model: vertex_ai/gemini-2.5-pro, vertex_project: p1}")
    with pytest.raises(TianjiError, match="prepare"):
        VertexAdapter().build_request(_call(d, {"messages": []}))


# --------------------------------------------------------------------------- tokens


def test_token_minted_verified_and_cached(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, tokens: TokenEndpoint
) -> None:
    key_file = _service_account(tmp_path, rsa_key, tokens.url)
    d = _deployment(
        tmp_path, f"{{model: vertex_ai/gemini-2.5-pro, vertex_credentials: '{key_file}'}}"
    )
    adapter = VertexAdapter()

    async def flow() -> list[Call]:
        transport = HttpTransport()
        try:
            calls = [_call(d, {"messages": []}) for _ in range(6)]
            # Five concurrent first calls share one exchange; a later one uses the cache.
            await asyncio.gather(*(adapter.prepare(c, transport.send) for c in calls[:5]))
            await adapter.prepare(calls[5], transport.send)
            return calls
        finally:
            await transport.aclose()

    calls = asyncio.run(flow())
    assert tokens.issued == 1
    assert {dict(c.extra_headers)["authorization"] for c in calls} == {"Bearer ya29.test-token-1"}
    (claims,) = tokens.claims
    assert (claims["iss"], claims["scope"], claims["aud"]) == (EMAIL, SCOPE, tokens.url)
    assert tokens.headers == [{"alg": "RS256", "typ": "JWT", "kid": "kid-123"}]


def test_token_refreshed_five_minutes_before_expiry(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, tokens: TokenEndpoint
) -> None:
    credentials = load_credentials(_service_account(tmp_path, rsa_key, tokens.url).read_text())
    now = [1_000_000.0]
    source = TokenSource(credentials, provider="vertex_ai", clock=lambda: now[0])

    async def token_at(offset: float) -> str:
        now[0] = 1_000_000.0 + offset
        transport = HttpTransport()
        try:
            return await source.token(transport.send)
        finally:
            await transport.aclose()

    assert asyncio.run(token_at(0)) == "ya29.test-token-1"
    assert asyncio.run(token_at(3600 - 301)) == "ya29.test-token-1"  # still > 5 min left
    assert asyncio.run(token_at(3600 - 299)) == "ya29.test-token-2"  # refreshed
    assert tokens.issued == 2 and source.exchanges == 2


def test_refused_assertion_is_a_401(tmp_path: Path, tokens: TokenEndpoint) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = _service_account(tmp_path, other_key, tokens.url)
    d = _deployment(
        tmp_path, f"{{model: vertex_ai/gemini-2.5-pro, vertex_credentials: '{key_file}'}}"
    )

    async def flow() -> None:
        transport = HttpTransport()
        try:
            await VertexAdapter().prepare(_call(d, {}), transport.send)
        finally:
            await transport.aclose()

    with pytest.raises(TianjiError) as info:
        asyncio.run(flow())
    assert (info.value.status, info.value.type) == (401, "authentication_error")
    assert "invalid_grant: Invalid JWT Signature." in info.value.message
    assert tokens.issued == 0


def test_authorized_user_refresh_token(
    tmp_path: Path, tokens: TokenEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = {
        "type": "authorized_user",
        "client_id": "cid",
        "client_secret": "secret",
        "refresh_token": "1//refresh-me",
        "quota_project_id": "user-project",
        "token_uri": tokens.url,
    }
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(user))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    d = _deployment(tmp_path, "{model: vertex_ai/gemini-2.5-pro}")
    adapter = VertexAdapter()
    call = _call(d, {"messages": []})

    async def flow() -> None:
        transport = HttpTransport()
        try:
            await adapter.prepare(call, transport.send)
        finally:
            await transport.aclose()

    asyncio.run(flow())
    assert dict(call.extra_headers)["authorization"] == "Bearer ya29.test-token-1"
    assert "/projects/user-project/" in adapter.build_request(call).url


# --------------------------------------------------------------------------- calls


def _send(adapter: VertexAdapter, calls: list[Call]) -> list[tuple[int, bytes]]:
    """prepare + build_request + send through the real transport, per call."""

    async def flow() -> list[tuple[int, bytes]]:
        transport = HttpTransport()
        results = []
        try:
            for call in calls:
                await adapter.prepare(call, transport.send)
                response = await transport.send(adapter.build_request(call), Timeouts(2, 5))
                try:
                    results.append((response.status, await response.read()))
                finally:
                    await response.aclose()
            return results
        finally:
            await transport.aclose()

    return asyncio.run(flow())


@pytest.fixture
def vertex_setup(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, tokens: TokenEndpoint
) -> Iterator[tuple[FakeUpstream, Deployment, Path]]:
    key_file = _service_account(tmp_path, rsa_key, tokens.url)
    with FakeUpstream() as up:
        d = _deployment(
            tmp_path,
            f"{{model: vertex_ai/gemini-2.5-flash, vertex_project: proj-7, "
            f"vertex_location: us-east5, api_base: '{up.root_url}', "
            f"vertex_credentials: '{key_file}'}}",
        )
        yield up, d, key_file


@pytest.mark.matrix("vertex_ai", "chat")
@pytest.mark.matrix("vertex_ai", "usage")
def test_vertex_chat_through_transport(
    vertex_setup: tuple[FakeUpstream, Deployment, Path], tokens: TokenEndpoint
) -> None:
    up, d, _ = vertex_setup
    up.behave("status", status=200, body=(FIXTURES / "gemini_chat.json").read_bytes(), times=3)
    adapter = VertexAdapter()
    messages = [{"role": "user", "content": "How many r's?"}]
    calls = [_call(d, {"messages": messages}) for _ in range(3)]
    results = _send(adapter, calls)
    assert tokens.issued == 1  # one exchange for three calls
    for request in up.requests:
        assert request.path == (
            "/v1/projects/proj-7/locations/us-east5/publishers/google/models/"
            "gemini-2.5-flash:generateContent"
        )
        assert request.headers["authorization"] == "Bearer ya29.test-token-1"
        assert request.json["contents"] == [{"role": "user", "parts": [{"text": "How many r's?"}]}]
    status, body = results[0]
    out = msgspec.json.decode(adapter.translate_response(calls[0], body) or b"")
    assert status == 200 and out["choices"][0]["message"]["content"].startswith("There are three")
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 1024}


@pytest.mark.matrix("vertex_ai", "stream")
def test_vertex_stream_through_transport(
    vertex_setup: tuple[FakeUpstream, Deployment, Path],
) -> None:
    up, d, _ = vertex_setup
    raw = (FIXTURES / "gemini_stream_text.sse").read_bytes()
    up.behave("status", status=200, body=raw, content_type="text/event-stream", times=1)
    adapter = VertexAdapter()
    call = _call(
        d, {"messages": [{"role": "user", "content": "Bonjour"}], "stream": True}, stream=True
    )
    ((status, body),) = _send(adapter, [call])
    translator = adapter.stream_translator(call)
    assert translator is not None
    out = b"".join(translator.feed(body[i : i + 1]) for i in range(len(body))) + translator.close()
    text = "".join(
        json.loads(block[6:])["choices"][0]["delta"].get("content", "")
        for block in out.split(b"\n\n")
        if block.startswith(b"data: {")
    )
    assert status == 200 and text == "Bonjour ! Ravi de vous voir — comment ça va ? 👋"
    assert up.requests[-1].path.endswith(":streamGenerateContent")
    assert up.requests[-1].query == {"alt": "sse"}


@pytest.mark.matrix("vertex_ai", "embeddings")
def test_vertex_embeddings_predict(vertex_setup: tuple[FakeUpstream, Deployment, Path]) -> None:
    up, d, _ = vertex_setup
    up.behave("status", status=200, body=(FIXTURES / "vertex_embed_predict.json").read_bytes())
    adapter = VertexAdapter()
    call = _call(
        d,
        {"input": ["hello world", "bye"], "dimensions": 3, "task_type": "RETRIEVAL_QUERY"},
        operation="embeddings",
    )
    ((_, body),) = _send(adapter, [call])
    assert up.requests[-1].path.endswith("/models/gemini-2.5-flash:predict")
    assert up.requests[-1].json == {
        "instances": [
            {"content": "hello world", "task_type": "RETRIEVAL_QUERY"},
            {"content": "bye", "task_type": "RETRIEVAL_QUERY"},
        ],
        "parameters": {"outputDimensionality": 3},
    }
    out = msgspec.json.decode(adapter.translate_response(call, body) or b"")
    assert [e["embedding"] for e in out["data"]] == [
        [0.0123, -0.0456, 0.0789],
        [-0.0321, 0.0654, -0.0987],
    ]
    assert out["usage"] == {"prompt_tokens": 10, "total_tokens": 10}


@pytest.mark.matrix("vertex_ai", "errors")
def test_vertex_error_mapping(vertex_setup: tuple[FakeUpstream, Deployment, Path]) -> None:
    up, d, _ = vertex_setup
    error = {
        "error": {
            "code": 429,
            "message": "Resource exhausted. Please try again later.",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    up.behave("status", status=429, json=error, times=1)
    adapter = VertexAdapter()
    call = _call(d, {"messages": [{"role": "user", "content": "hi"}]})
    ((status, body),) = _send(adapter, [call])
    mapped = adapter.error_from_status(call, status, {}, body)
    assert (mapped.status, mapped.type) == (429, "rate_limit_error")
    assert mapped.message == "vertex_aiException - Resource exhausted. Please try again later."


# --------------------------------------------------------------------------- gateway


@pytest.mark.matrix("vertex_ai", "tools")
@pytest.mark.matrix("vertex_ai", "tool_stream")
def test_vertex_through_the_gateway(
    vertex_setup: tuple[FakeUpstream, Deployment, Path], tokens: TokenEndpoint, tmp_path: Path
) -> None:
    up, _, key_file = vertex_setup
    config = f"""
model_list:
  - model_name: vx
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_project: proj-7
      vertex_location: us-east5
      api_base: {up.root_url}
      vertex_credentials: {key_file}
general_settings:
  master_key: {MASTER_KEY}
"""
    up.behave("status", status=200, body=(FIXTURES / "gemini_tool_call.json").read_bytes(), times=2)
    stream = (FIXTURES / "gemini_stream_tools.sse").read_bytes()
    up.behave("status", status=200, body=stream, content_type="text/event-stream", times=1)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    with running_gateway(config, tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0, timeout=10)
        for _ in range(2):
            reply = client.chat.completions.create(model="vx", messages=messages)
            assert reply.choices[0].finish_reason == "tool_calls"
        chunks = list(
            client.chat.completions.create(
                model="vx", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
    names = [
        call.function.name
        for chunk in chunks
        for choice in chunk.choices
        for call in choice.delta.tool_calls or ()
        if call.function
    ]
    assert names == ["get_weather", "get_time"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 41 + 58
    assert tokens.issued == 1  # one token for the three calls
    assert [r.headers["authorization"] for r in up.requests] == ["Bearer ya29.test-token-1"] * 3
