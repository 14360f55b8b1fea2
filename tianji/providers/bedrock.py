"""Amazon Bedrock: OpenAI chat through the Converse API, embeddings through InvokeModel.

`bedrock/<model id>` (an optional `converse/` route prefix is stripped) is sent to
`{base}/model/{model id, URL-encoded}/converse` (or `/converse-stream`); `base` is
the provider's `https://bedrock-runtime.{region}.amazonaws.com` with the region
filled in, or the deployment's api_base. Requests are signed with SigV4 (service
`bedrock`) over the final body, or carry `Authorization: Bearer` for a Bedrock API
key (`api_key` / AWS_BEARER_TOKEN_BEDROCK). Facts: providers.md §3.3.

`invoke/<model>` chat (InvokeModel with the family's native body) is served by
Converse as well: same model, same answer, one translation to maintain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from tianji.compile.model import Deployment
from tianji.errors import InvalidRequest, TianjiError
from tianji.providers.base import Call, StreamTranslator
from tianji.providers.bedrock_request import JSON_TOOL, converse_body, json_mode, unsupported
from tianji.providers.bedrock_response import ConverseStreamTranslator, chat_response
from tianji.providers.errors import provider_error
from tianji.providers.eventstream import Frame
from tianji.providers.openai_compat import apply_params
from tianji.providers.shapes import decode_object, embedding_inputs, embedding_list
from tianji.providers.sigv4 import aws_problems, aws_region, sign_for
from tianji.tokens import count_text
from tianji.upstream.types import UpstreamRequest

__all__ = ["BedrockAdapter", "aws_error", "decode_object", "embedding_list", "error_status"]

SERVICE = "bedrock"
_ROUTE_PREFIXES = ("converse/", "invoke/")
# x-amzn-errortype (or a stream exception's type) -> status, providers.md §3.3;
# SageMaker's names (ValidationError, InternalFailure, ...) share the table.
_STATUSES = {
    "ValidationException": 400,
    "ValidationError": 400,
    "UnrecognizedClientException": 401,
    "InvalidSignatureException": 401,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceQuotaExceededException": 429,
    "ModelErrorException": 500,
    "ModelStreamErrorException": 500,
    "InternalServerException": 500,
    "InternalFailure": 500,
    "InternalStreamFailure": 500,
    "ServiceUnavailableException": 503,
    "ServiceUnavailable": 503,
}
_encode = msgspec.json.encode


def error_status(error_type: str, default: int) -> int:
    """Status for an AWS error type; stream exceptions spell it lowerCamel."""
    name = error_type.split(":", 1)[0].strip()
    return _STATUSES.get(name[:1].upper() + name[1:], default)


def aws_error(
    provider: str, status: int, error_type: str, body: bytes, retry_after: str | None = None
) -> TianjiError:
    """An AWS JSON error (`{"message"}` or `{"Message"}`) as the client's error."""
    try:
        data = msgspec.json.decode(body) if body else {}
    except msgspec.DecodeError:
        data = body.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict):
        message = str(data.get("message") or data.get("Message") or data or "")
    else:
        message = str(data)
    name = error_type.split(":", 1)[0].strip()
    message = f"{name}: {message}" if name else message
    return provider_error(
        provider, error_status(name, status), message or f"HTTP {status}", retry_after=retry_after
    )


def model_id(call: Call) -> str:
    model = call.model
    for prefix in _ROUTE_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def model_url(call: Call, action: str) -> str:
    """`{base}/model/{id}/{action}`; the id is one path segment, so `:` and `/` are encoded."""
    base = call.deployment.api_base.replace("{region}", aws_region(call.deployment.params))
    return f"{base}/model/{quote(model_id(call), safe='')}/{action}"


def auth_headers(
    call: Call, url: str, headers: list[tuple[str, str]], body: bytes
) -> list[tuple[str, str]]:
    """Explicit AWS keys sign; else a Bedrock API key is a Bearer token; else env keys sign."""
    deployment = call.deployment
    params = deployment.params
    if deployment.api_key and not (params.aws_access_key_id and params.aws_secret_access_key):
        return [*headers, ("authorization", f"Bearer {deployment.api_key}")]
    return sign_for(params, SERVICE, "POST", url, headers, body)


class BedrockAdapter:
    name = "bedrock"

    def check(self, deployment: Deployment, env: Mapping[str, str]) -> list[str]:
        """Configuration problems `tianji check` reports for this deployment."""
        # A Bedrock API key (AWS_BEARER_TOKEN_BEDROCK) replaces the signature.
        return aws_problems(deployment.params, env, bearer=deployment.api_key is not None)

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.operation == "chat":
            action = "converse-stream" if call.stream else "converse"
            body = _encode(converse_body(call, apply_params(call), model_id(call)))
            url = model_url(call, action)
        elif call.operation == "embeddings":
            url = model_url(call, "invoke")
            body = _encode(_embedding_body(call, apply_params(call)))
        else:
            raise InvalidRequest(f"bedrock does not support {call.operation}")
        headers = [
            *call.deployment.headers,
            ("content-type", "application/json"),
            (
                "accept",
                "application/vnd.amazon.eventstream" if call.stream else "application/json",
            ),
        ]
        return UpstreamRequest("POST", url, auth_headers(call, url, headers, body), body)

    def translate_response(self, call: Call, body: bytes) -> bytes | None:
        data = decode_object(self.name, body)
        if call.operation == "embeddings":
            return _embedding_response(call, data)
        json_tool = JSON_TOOL if json_mode(call) else None
        return _encode(chat_response(model_id(call), data, json_tool))

    def stream_translator(self, call: Call) -> StreamTranslator | None:
        json_tool = JSON_TOOL if json_mode(call) else None
        return ConverseStreamTranslator(call, model_id(call), json_tool, self.stream_exception)

    def stream_exception(self, frame: Frame) -> TianjiError:
        """An exception frame mid-stream (`:exception-type` throttlingException, ...)
        or a stream-level error frame (`:error-code`, `:error-message`)."""
        if frame.message_type == "error":
            body = _encode({"message": frame.header(":error-message")})
            return aws_error(self.name, 502, frame.header(":error-code"), body)
        return aws_error(self.name, 502, frame.header(":exception-type"), frame.payload)

    def error_from_status(
        self, call: Call, status: int, headers: Mapping[str, str], body: bytes
    ) -> TianjiError:
        error_type = headers.get("x-amzn-errortype", "")
        return aws_error(self.name, status, error_type, body, headers.get("retry-after"))


# --------------------------------------------------------------------------- embeddings


def _embedding_family(call: Call) -> str:
    model = model_id(call)
    if "titan-embed" in model:
        return "titan"
    if "cohere.embed" in model:
        return "cohere"
    raise InvalidRequest(
        f"bedrock embeddings support Amazon Titan and Cohere models, not {model!r}",
        param="model",
    )


def _embedding_body(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    texts = embedding_inputs("bedrock", body.get("input"))
    if _embedding_family(call) == "cohere":
        if "dimensions" in body:
            unsupported(call, "dimensions", model_id(call))
        return {"texts": texts, "input_type": body.get("input_type") or "search_document"}
    # Titan embeds one text per InvokeModel call, and an adapter makes one upstream call.
    if len(texts) != 1:
        raise InvalidRequest(
            "bedrock Titan embeddings take one input per request; send the inputs one by one",
            param="input",
        )
    titan: dict[str, Any] = {"inputText": texts[0]}
    if body.get("dimensions") is not None:
        titan["dimensions"] = body["dimensions"]
    return titan


def _embedding_response(call: Call, data: dict[str, Any]) -> bytes:
    if "embedding" in data:  # Titan
        vectors = [data["embedding"]]
        tokens = int(data.get("inputTextTokenCount") or 0)
    else:
        raw = data.get("embeddings")
        vectors = raw.get("float", []) if isinstance(raw, dict) else raw or []
        # Cohere on Bedrock reports no usage in the body: estimated.
        texts = embedding_inputs("bedrock", (call.body or {}).get("input"))
        tokens = sum(count_text(text, model_id(call)) for text in texts)
    return embedding_list(model_id(call), vectors, tokens, (call.body or {}).get("encoding_format"))
