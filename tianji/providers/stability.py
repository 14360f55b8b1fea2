"""Stability AI image generation behind `/images/generations` (providers.md §3.12).

The model picks the endpoint under `/v2beta/stable-image/generate`:
`stable-image-core` -> `/core`, `stable-image-ultra` -> `/ultra`, and the SD3 family
(`sd3.5-large`, `sd3.5-medium`, ...) -> `/sd3` with the form field `model=<name>`.
The request is multipart form data: `prompt`, `aspect_ratio` (from OpenAI's
`size`), `output_format`, and Stability's own extras (`negative_prompt`, `seed`,
`style_preset`, `cfg_scale`, ...) as they come. With `Accept: application/json`
Stability answers `{"image": <base64>, "finish_reason", "seed"}`, which becomes
OpenAI's `{"created", "data": [{"b64_json"}]}`.

What OpenAI's API can ask and Stability cannot give is refused rather than
faked: one call makes one image (`n > 1` follows the unsupported-param rule), and
the image comes back as bytes, never as a URL (`response_format: "url"` is a 400).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from tianji.errors import InvalidRequest, TianjiError, UnsupportedParams
from tianji.providers.base import Call, FormPart, StreamTranslator
from tianji.providers.errors import CONTENT_POLICY, provider_error
from tianji.providers.multipart import encode_form
from tianji.providers.openai_compat import apply_params
from tianji.providers.shapes import decode_object, upstream_shape
from tianji.upstream.types import UpstreamRequest

__all__ = ["OPENAI_IMAGE_PARAMS", "StabilityAdapter", "aspect_ratio", "endpoint"]

_PROVIDER = "stability"
# Every OpenAI image-generation param: the unsupported-param rule applies to these
# (anything else in the body is a Stability extra and is passed on).
OPENAI_IMAGE_PARAMS = frozenset(
    {"background", "moderation", "n", "output_compression", "output_format", "partial_images",
     "quality", "response_format", "size", "stream", "style", "user"}
)  # fmt: skip
_ASPECT_RATIOS = frozenset({"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"})
# OpenAI's fixed sizes whose exact ratio Stability lacks: DALL-E 3's wide sizes are
# 7:4, the nearest Stability ratio is 16:9.
_SIZES = {"1792x1024": "16:9", "1024x1792": "9:16"}
# Output formats per endpoint (SD3 has no webp).
_FORMATS = {"core": ("png", "jpeg", "webp"), "ultra": ("png", "jpeg", "webp"),
            "sd3": ("png", "jpeg")}  # fmt: skip
_CORE = frozenset({"core", "stable-image-core"})
_ULTRA = frozenset({"ultra", "stable-image-ultra"})


def endpoint(model: str) -> tuple[str, str | None]:
    """(endpoint, value of the `model` form field) for a Stability model name."""
    name = model.lower()
    if name in _CORE:
        return "core", None
    if name in _ULTRA:
        return "ultra", None
    if name == "sd3":
        return "sd3", None  # the endpoint's default model
    if name.startswith("sd3"):
        return "sd3", model
    raise InvalidRequest(
        f"stability has no image model {model!r}: use stable-image-core, stable-image-ultra "
        "or an SD3 model (sd3.5-large, sd3.5-large-turbo, sd3.5-medium, ...)",
        param="model",
    )


def aspect_ratio(size: str) -> str | None:
    """OpenAI's `size` (`WIDTHxHEIGHT`) as a Stability aspect ratio; None for `auto`."""
    if size == "auto":
        return None
    if size in _SIZES:
        return _SIZES[size]
    width, sep, height = size.partition("x")
    if sep and width.isdigit() and height.isdigit() and int(width) and int(height):
        divisor = math.gcd(int(width), int(height))
        ratio = f"{int(width) // divisor}:{int(height) // divisor}"
        if ratio in _ASPECT_RATIOS:
            return ratio
    raise InvalidRequest(
        f"stability cannot make a {size!r} image: use a size with one of the aspect ratios "
        f"{', '.join(sorted(_ASPECT_RATIOS))} (e.g. 1024x1024, 1792x1024, 1024x1792), "
        "or pass `aspect_ratio` directly",
        param="size",
    )


class StabilityAdapter:
    name = _PROVIDER

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.operation != "image_generation" or call.body is None:
            raise InvalidRequest(f"stability does not serve {call.operation}")
        # The gateway knows OpenAI's image params only when the openai provider lists
        # them; the rule must hold either way.
        checked = dataclasses.replace(call, openai_params=call.openai_params or OPENAI_IMAGE_PARAMS)
        body = apply_params(checked)
        name, model_field = endpoint(str(body.pop("model")))
        _one_image(call, body.pop("n", None))
        _check_response_format(body.pop("response_format", None))
        fields = _form_fields(name, body)
        if model_field is not None:
            fields.insert(0, ("model", model_field))
        parts = [FormPart(key, value.encode()) for key, value in fields]
        payload, content_type = encode_form(parts)
        deployment = call.deployment
        url = f"{deployment.api_base}{deployment.provider.paths[call.operation]}/{name}"
        if deployment.query:
            url += "?" + urlencode(deployment.query)
        headers = [
            *deployment.headers,
            *call.extra_headers,
            # JSON (base64 image + finish_reason) rather than the raw image bytes.
            ("accept", "application/json"),
            ("content-type", content_type),
        ]
        return UpstreamRequest("POST", url, headers, payload)

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        data = decode_object(_PROVIDER, body)
        if data.get("finish_reason") == "CONTENT_FILTERED":
            raise provider_error(
                _PROVIDER,
                400,
                "the generated image was blocked by Stability's content filter",
                code=CONTENT_POLICY,
            )
        with upstream_shape(_PROVIDER):
            image = data["image"]
            if not isinstance(image, str) or not image:
                raise ValueError("no base64 image in the answer")
        answer: dict[str, Any] = {"created": int(time.time()), "data": [{"b64_json": image}]}
        fmt = (call.body or {}).get("output_format") or call.deployment.request_defaults.get(
            "output_format"
        )
        answer["output_format"] = fmt if isinstance(fmt, str) else "png"
        return msgspec.json.encode(answer)

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        return None

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        name, message = _error_parts(body)
        retry_after = headers.get("retry-after")
        if name == "content_moderation":
            # Stability refuses flagged prompts with a 403; to clients and the router it
            # is the content-policy 400 every provider's filter becomes (providers.md §4).
            return provider_error(_PROVIDER, 400, message, code=CONTENT_POLICY)
        return provider_error(_PROVIDER, status, message, code=name, retry_after=retry_after)


def _one_image(call: Call, n: Any) -> None:
    """One Stability call makes one image; more follows the unsupported-param rule."""
    if n is None or n == 1:
        return
    drop = call.drop_params if call.drop_params is not None else call.deployment.drop_params
    if not drop:
        raise UnsupportedParams(
            f"stability makes one image per request, not n={n}. To get one image instead, "
            "set drop_params=true (request, deployment or litellm_settings).",
            param="n",
        )


def _check_response_format(fmt: Any) -> None:
    if fmt not in (None, "b64_json"):
        raise InvalidRequest(
            f"stability returns the image itself, never a URL: response_format {fmt!r} "
            "cannot be honoured, ask for response_format='b64_json'",
            param="response_format",
        )


def _form_fields(name: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """prompt, aspect_ratio, output_format, then Stability's extras as given."""
    prompt = body.pop("prompt", None)
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest("'prompt' is required.", param="prompt")
    size = body.pop("size", None)
    # A native `aspect_ratio` says exactly what the client wants; it wins over `size`.
    ratio = body.pop("aspect_ratio", None) or (aspect_ratio(str(size)) if size else None)
    fmt = body.pop("output_format", None) or "png"
    if fmt not in _FORMATS[name]:
        raise InvalidRequest(
            f"stability {name} writes {', '.join(_FORMATS[name])} images, not {fmt!r}",
            param="output_format",
        )
    fields = [("prompt", prompt)]
    if ratio:
        fields.append(("aspect_ratio", str(ratio)))
    fields.append(("output_format", str(fmt)))
    fields += [(key, _form_value(value)) for key, value in body.items() if value is not None]
    return fields


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return msgspec.json.encode(value).decode()


def _error_parts(body: bytes) -> tuple[str | None, str]:
    """Stability's `{"id", "name", "errors": [...]}` as (name, message)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        data = None
    if not isinstance(data, dict):
        text = body.decode("utf-8", "replace").strip()[:500]
        return None, text or "empty error response"
    name = data.get("name") if isinstance(data.get("name"), str) else None
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        return name, "; ".join(str(e) for e in errors)
    message = data.get("message")
    return name, str(message or name or data)
