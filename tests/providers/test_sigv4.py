"""SigV4: our signer against botocore's, byte for byte, for fixed inputs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.auth
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from tests.providers.fixtures.bedrock_support import bedrock_call
from tianji.errors import AuthenticationFailed
from tianji.providers import sigv4
from tianji.providers.bedrock import model_url
from tianji.providers.sigv4 import AwsCredentials, aws_credentials, aws_region, sign
from tianji.spec.config import ModelParams

FROZEN = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
KEY, SECRET, TOKEN = (
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "FwoGZXIvYXdzEJr//token==",
)
ARN = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-v1:0"


@pytest.fixture
def frozen_botocore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # botocore reads the time through this name when it signs.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FROZEN.replace(tzinfo=None))
    yield


def _botocore_headers(
    method: str, url: str, headers: dict[str, str], body: bytes, token: str | None, service: str
) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    signer = botocore.auth.SigV4Auth(Credentials(KEY, SECRET, token), service, "eu-west-1")
    signer.add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


CASES: list[tuple[str, str, dict[str, str], bytes, str | None, str]] = [
    (
        "POST",
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
        "anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        {"Content-Type": "application/json"},
        b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}',
        None,
        "bedrock",
    ),
    (
        "POST",
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
        "arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.x%3A0/"
        "converse-stream",
        {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"},
        b'{"messages":[]}',
        TOKEN,
        "bedrock",
    ),
    (
        "GET",
        "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/my-ep/x"
        "?b=2&a=1&a=0&c=x%20y&empty=",
        {"X-Custom": "  spaced    value  "},
        b"",
        TOKEN,
        "sagemaker",
    ),
    ("POST", "http://127.0.0.1:8080/model/m%3A1/invoke", {}, b"", None, "bedrock"),
    ("POST", "https://example.amazonaws.com/a/./b/../c//d/", {}, b"{}", None, "sagemaker"),
]


@pytest.mark.parametrize(("method", "url", "headers", "body", "token", "service"), CASES)
def test_signature_equals_botocore(
    frozen_botocore: None,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
    service: str,
) -> None:
    expected = _botocore_headers(method, url, dict(headers), body, token, service)
    ours = dict(
        sign(
            method,
            url,
            list(headers.items()),
            body,
            credentials=AwsCredentials(KEY, SECRET, token),
            region="eu-west-1",
            service=service,
            when=FROZEN,
        )
    )
    assert ours["authorization"] == expected["authorization"]
    assert ours["x-amz-date"] == expected["x-amz-date"] == "20250314T092653Z"
    assert ours.get("x-amz-security-token") == expected.get("x-amz-security-token") == token


def test_signature_changes_with_every_input() -> None:
    base: dict[str, Any] = {
        "credentials": AwsCredentials(KEY, SECRET),
        "region": "us-east-1",
        "service": "bedrock",
        "when": FROZEN,
    }
    url = "https://h.amazonaws.com/model/m/converse"

    def auth(**changes: Any) -> str:
        args = {**base, **changes}
        method, target = args.pop("method", "POST"), args.pop("url", url)
        body = args.pop("body", b"{}")
        return dict(sign(method, target, [], body, **args))["authorization"]

    reference = auth()
    assert auth(body=b"{ }") != reference
    assert auth(url=url + "-stream") != reference
    assert auth(region="us-west-2") != reference
    assert auth(when=FROZEN.replace(second=54)) != reference
    assert auth(credentials=AwsCredentials(KEY, SECRET + "x")) != reference


def test_real_botocore_client_request_is_reproduced(frozen_botocore: None) -> None:
    """botocore's own bedrock-runtime client (no network: before-send answers) builds the
    URL for an ARN model id and signs it; our URL encoding and signer give the same."""
    session = botocore.session.get_session()
    client = session.create_client(
        "bedrock-runtime",
        region_name="eu-west-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
    )
    sent: list[AWSRequest] = []

    def answer(request: AWSRequest, **_: Any) -> AWSResponse:
        sent.append(request)

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield b"{}"

        return AWSResponse(request.url, 200, {"content-type": "application/json"}, Raw())

    client.meta.events.register("before-send", answer)
    client.converse(modelId=ARN, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    request = sent[0]
    call = bedrock_call(f"converse/{ARN}", region="eu-west-1", api_base=None)
    assert model_url(call, "converse") == request.url
    ours = sign(
        "POST",
        request.url,
        [("content-type", request.headers["Content-Type"].decode())],
        request.body,
        credentials=AwsCredentials(KEY, SECRET, TOKEN),
        region="eu-west-1",
        service="bedrock",
        when=FROZEN,
    )
    assert dict(ours)["authorization"] == request.headers["Authorization"].decode()


def test_credentials_from_params_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "ENVKEY",
        "AWS_SECRET_ACCESS_KEY": "ENVSECRET",
        "AWS_REGION": "ap-south-1",
    }
    params = ModelParams(
        model="bedrock/m", aws_access_key_id="P", aws_secret_access_key="S", aws_session_token="T"
    )
    assert aws_credentials(params, env) == AwsCredentials("P", "S", "T")
    assert aws_credentials(ModelParams(model="bedrock/m"), env) == AwsCredentials(
        "ENVKEY", "ENVSECRET"
    )
    assert aws_region(ModelParams(model="bedrock/m"), env) == "ap-south-1"
    assert (
        aws_region(ModelParams(model="bedrock/m", aws_region_name="eu-north-1"), env)
        == "eu-north-1"
    )
    assert aws_region(ModelParams(model="bedrock/m"), {}) == "us-east-1"
    with pytest.raises(AuthenticationFailed) as info:
        aws_credentials(ModelParams(model="bedrock/m"), {"AWS_ACCESS_KEY_ID": "only-half"})
    assert "AWS_SECRET_ACCESS_KEY" in info.value.message
    # Without an explicit env, os.environ is read at signing time.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "OSKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "OSSECRET")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    assert aws_credentials(ModelParams(model="bedrock/m")) == AwsCredentials("OSKEY", "OSSECRET")


def test_clock_is_read_per_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call signs at the current time (a retry gets a fresh signature)."""
    times = iter([FROZEN, FROZEN.replace(minute=31)])
    monkeypatch.setattr(sigv4, "utc_now", lambda: next(times))
    creds = AwsCredentials(KEY, SECRET)
    first = dict(sign("POST", "https://h/x", [], b"", credentials=creds, region="r", service="s"))
    second = dict(sign("POST", "https://h/x", [], b"", credentials=creds, region="r", service="s"))
    assert (first["x-amz-date"], second["x-amz-date"]) == ("20250314T092653Z", "20250314T093153Z")
    assert first["authorization"] != second["authorization"]


def test_canonical_path_double_encodes_and_normalises() -> None:
    assert sigv4.canonical_path("/model/a%3A0/converse") == "/model/a%253A0/converse"
    assert sigv4.canonical_path("/a/./b/../c//d/") == "/a/c/d/"
    assert sigv4.canonical_path("") == "/"
    assert sigv4.canonical_query("b=2&a=x%20y&a=1") == "a=1&a=x%20y&b=2"
