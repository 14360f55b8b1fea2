"""Stability AI behind /images/generations: endpoint choice, the multipart request,
refusals of what Stability cannot do, answers, errors, and the openai SDK through
the gateway against an upstream speaking Stability's JSON."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest

from tests.conftest import MASTER_KEY, Gateway, running_gateway
from tests.support.fake_upstream import FakeUpstream, parse_multipart
from tianji.compile.model import Deployment
from tianji.compile.pipeline import build
from tianji.errors import InvalidRequest, UnsupportedParams
from tianji.providers import Call, adapter_for
from tianji.providers.stability import OPENAI_IMAGE_PARAMS, aspect_ratio, endpoint

pytestmark = pytest.mark.timeout(30)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
PNG_B64 = base64.b64encode(PNG).decode()
# What /v2beta/stable-image/generate/* answers with `Accept: application/json`.
ANSWER = {"image": PNG_B64, "finish_reason": "SUCCESS", "seed": 1234567}
FILTERED = {"image": PNG_B64, "finish_reason": "CONTENT_FILTERED", "seed": 99}


def deployment(tmp_path: Path, params: str) -> Deployment:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env={})
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models.groups["m"].deployments[0]


def image_call(d: Deployment, body: dict[str, Any], **kw: Any) -> Call:
    return Call(
        "image_generation", d, d.model, body={"prompt": "a red fox", **body},
        openai_params=OPENAI_IMAGE_PARAMS, **kw,
    )  # fmt: skip


def sent_form(request: Any) -> dict[str, str]:
    content_type = dict(request.headers)["content-type"]
    parts = parse_multipart(request.body, content_type)
    assert all(p.filename is None for p in parts)
    return {p.name: p.data.decode() for p in parts}


# --------------------------------------------------------------------------- request


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("stable-image-core", ("core", None)),
        ("stable-image-ultra", ("ultra", None)),
        ("sd3.5-large", ("sd3", "sd3.5-large")),
        ("sd3.5-large-turbo", ("sd3", "sd3.5-large-turbo")),
        ("sd3", ("sd3", None)),
    ],
)
def test_model_picks_the_endpoint(model: str, expected: tuple[str, str | None]) -> None:
    assert endpoint(model) == expected


def test_unknown_model_is_a_400_naming_model() -> None:
    with pytest.raises(InvalidRequest) as info:
        endpoint("stable-diffusion-xl-1024-v1-0")
    assert info.value.param == "model" and info.value.status == 400


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("1024x1024", "1:1"),
        ("512x512", "1:1"),
        ("1792x1024", "16:9"),
        ("1024x1792", "9:16"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1344x768", "7:4"),
    ],
)
def test_size_to_aspect_ratio(size: str, ratio: str) -> None:
    if ratio == "7:4":  # not a Stability ratio (only DALL-E 3's fixed sizes are mapped)
        with pytest.raises(InvalidRequest) as info:
            aspect_ratio(size)
        assert info.value.param == "size" and size in info.value.message
    else:
        assert aspect_ratio(size) == ratio
    assert aspect_ratio("auto") is None


def test_sd3_request(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: stability/sd3.5-large, api_key: sk-stab}")
    request = adapter_for("stability").build_request(
        image_call(
            d,
            {
                "model": "my-images",
                "size": "1792x1024",
                "response_format": "b64_json",
                "n": 1,
                "negative_prompt": "blurry",
                "seed": 42,
                "style_preset": "photographic",
            },
        )
    )
    assert request.method == "POST"
    assert request.url == "https://api.stability.ai/v2beta/stable-image/generate/sd3"
    headers = dict(request.headers)
    assert headers["authorization"] == "Bearer sk-stab"
    assert headers["accept"] == "application/json"
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent_form(request) == {
        "model": "sd3.5-large",
        "prompt": "a red fox",
        "aspect_ratio": "16:9",
        "output_format": "png",
        "negative_prompt": "blurry",
        "seed": "42",
        "style_preset": "photographic",
    }


def test_core_request_without_size(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: stability/stable-image-core, api_key: k}")
    request = adapter_for("stability").build_request(image_call(d, {"output_format": "webp"}))
    assert request.url.endswith("/v2beta/stable-image/generate/core")
    # No model field for core/ultra; Stability's default ratio when no size is given.
    assert sent_form(request) == {"prompt": "a red fox", "output_format": "webp"}
    native = adapter_for("stability").build_request(
        image_call(d, {"size": "1024x1024", "aspect_ratio": "21:9"})
    )
    assert sent_form(native)["aspect_ratio"] == "21:9"


def test_refusals(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: stability/sd3.5-medium, api_key: k}")
    adapter = adapter_for("stability")
    cases: list[tuple[dict[str, Any], type[InvalidRequest], str]] = [
        ({"n": 2}, UnsupportedParams, "n"),
        ({"response_format": "url"}, InvalidRequest, "response_format"),
        ({"size": "1000x300"}, InvalidRequest, "size"),
        ({"output_format": "webp"}, InvalidRequest, "output_format"),  # SD3 has no webp
        ({"quality": "hd"}, UnsupportedParams, "quality"),
        ({"prompt": ""}, InvalidRequest, "prompt"),
    ]
    for body, kind, param in cases:
        with pytest.raises(kind) as info:
            adapter.build_request(image_call(d, body))
        assert info.value.status == 400 and info.value.param == param, body
    with pytest.raises(InvalidRequest, match="never a URL"):
        adapter.build_request(image_call(d, {"response_format": "url"}, drop_params=True))


def test_drop_params_makes_one_image(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: stability/sd3.5-large, api_key: k, drop_params: true}")
    request = adapter_for("stability").build_request(
        image_call(d, {"n": 3, "quality": "hd", "style": "vivid"})
    )
    form = sent_form(request)
    assert form == {
        "model": "sd3.5-large",
        "prompt": "a red fox",
        "output_format": "png",
    }


def test_answer_and_content_filter(tmp_path: Path) -> None:
    d = deployment(tmp_path, "{model: stability/stable-image-ultra, api_key: k}")
    adapter = adapter_for("stability")
    call = image_call(d, {"output_format": "jpeg"})
    out = msgspec.json.decode(adapter.translate_response(call, msgspec.json.encode(ANSWER)) or b"")
    assert out["data"] == [{"b64_json": PNG_B64}]
    assert out["output_format"] == "jpeg" and isinstance(out["created"], int)

    with pytest.raises(InvalidRequest) as info:
        adapter.translate_response(call, msgspec.json.encode(FILTERED))
    assert info.value.status == 400
    assert info.value.code == "content_policy_violation"
    assert info.value.type == "content_policy_violation"

    for broken in (b"<html>", b'{"finish_reason": "SUCCESS"}', b'{"image": 7}'):
        with pytest.raises(Exception) as bad:
            adapter.translate_response(call, broken)
        assert getattr(bad.value, "status", None) == 502, broken


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "code", "text"),
    [
        (400, {"id": "a1", "name": "bad_request", "errors": ["prompt: is required"]},
         400, "bad_request", "prompt: is required"),
        (401, {"id": "a2", "name": "unauthorized", "errors": ["missing authorization header"]},
         401, "unauthorized", "missing authorization header"),
        (403, {"id": "a3", "name": "content_moderation",
               "errors": ["Your request was flagged by our content moderation system"]},
         400, "content_policy_violation", "flagged"),
        (429, {"id": "a4", "name": "rate_limit_exceeded",
               "errors": ["You have exceeded the rate limit of 150 requests within 10 seconds"]},
         429, "rate_limit_exceeded", "150 requests"),
        (500, {"id": "a5", "name": "internal_error", "errors": ["An unexpected server error"]},
         502, "internal_error", "unexpected server error"),
    ],
)  # fmt: skip
def test_errors(
    tmp_path: Path, status: int, body: dict[str, Any], expected_status: int, code: str, text: str
) -> None:
    d = deployment(tmp_path, "{model: stability/stable-image-core, api_key: k}")
    error = adapter_for("stability").error_from_status(
        image_call(d, {}), status, {}, msgspec.json.encode(body)
    )
    assert error.status == expected_status and error.code == code
    assert text in error.message and error.message.startswith("stabilityException - ")


# --------------------------------------------------------------------------- gateway


@pytest.fixture
def gateway(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    config = f"""
model_list:
  - model_name: sd
    litellm_params:
      model: stability/sd3.5-large
      api_base: {upstream.root_url}
      api_key: sk-stability-secret
  - model_name: core
    litellm_params:
      model: stability/stable-image-core
      api_base: {upstream.root_url}
general_settings:
  master_key: {MASTER_KEY}
"""
    with running_gateway(config, tmp_path, env={"STABILITY_API_KEY": "sk-from-env"}) as gw:
        yield gw


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.matrix("stability", "images")
def test_gateway_images(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=ANSWER)
    result = client(gateway).images.generate(
        model="sd", prompt="a lighthouse at dusk", size="1024x1792", response_format="b64_json"
    )
    assert result.data is not None and len(result.data) == 1
    assert base64.b64decode(result.data[0].b64_json or "") == PNG
    seen = upstream.last_request
    assert seen.path == "/v2beta/stable-image/generate/sd3"
    assert seen.headers["authorization"] == "Bearer sk-stability-secret"
    assert seen.headers["accept"] == "application/json"
    form = {p.name: p.data for p in seen.form()}
    assert form == {
        "model": b"sd3.5-large",
        "prompt": b"a lighthouse at dusk",
        "aspect_ratio": b"9:16",
        "output_format": b"png",
    }

    client(gateway).images.generate(
        model="core", prompt="x", extra_body={"style_preset": "anime", "seed": 7}
    )
    seen = upstream.last_request
    assert seen.path == "/v2beta/stable-image/generate/core"
    assert seen.headers["authorization"] == "Bearer sk-from-env"
    form = {p.name: p.data for p in seen.form()}
    assert form["style_preset"] == b"anime" and form["seed"] == b"7" and "model" not in form


@pytest.mark.matrix("stability", "errors")
def test_gateway_errors(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=FILTERED, times=1)
    with pytest.raises(openai.BadRequestError) as filtered:
        client(gateway).images.generate(model="sd", prompt="x", response_format="b64_json")
    assert filtered.value.code == "content_policy_violation"

    refusal = {"id": "e1", "name": "payment_required", "errors": ["lack sufficient credits"]}
    upstream.behave("status", status=402, json=refusal, times=1)
    with pytest.raises(openai.APIStatusError) as unpaid:
        client(gateway).images.generate(model="sd", prompt="x", response_format="b64_json")
    assert unpaid.value.status_code == 402 and "lack sufficient credits" in unpaid.value.message

    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as url:
        client(gateway).images.generate(model="sd", prompt="x", response_format="url")
    assert url.value.body is not None and "response_format" in str(url.value.body)
    with pytest.raises(openai.BadRequestError) as many:
        client(gateway).images.generate(model="sd", prompt="x", n=2)
    assert "n=2" in many.value.message
    assert len(upstream.requests) == before  # refused before anything was sent


@pytest.mark.matrix("stability", "drop_params")
def test_gateway_drop_params(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.behave("status", status=200, json=ANSWER)
    result = client(gateway).images.generate(
        model="sd", prompt="x", n=2, quality="hd", extra_body={"drop_params": True}
    )
    assert result.data is not None and len(result.data) == 1
    form = {p.name for p in upstream.last_request.form()}
    assert form == {"model", "prompt", "output_format"}
