"""Adapters' own configuration checks run at link time: `tianji check` reports a
Bedrock deployment without AWS credentials, a Vertex one without credentials, ...,
instead of the first request failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tianji.compile.pipeline import build


def _problems(tmp_path: Path, params: str, env: dict[str, str], *, strict: bool) -> list[str]:
    config = tmp_path / "c.yaml"
    config.write_text(f"model_list:\n  - model_name: m\n    litellm_params: {params}\n")
    built, problems = build(config, env=env, strict_env=strict)
    found = [p for p in problems if p.path.startswith("model_list")]
    assert (built is None) == (strict and bool(found))
    return [f"{p.severity}: {p.message}" for p in found]


@pytest.mark.parametrize(
    ("params", "env", "expected"),
    [
        (
            "{model: bedrock/amazon.nova-lite-v1:0}",
            {"AWS_REGION": "eu-west-1"},
            "no AWS credentials",
        ),
        (
            "{model: bedrock/amazon.nova-lite-v1:0}",
            {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"},
            "no AWS region",
        ),
        ("{model: sagemaker/my-endpoint, aws_region_name: us-east-1}", {}, "no AWS credentials"),
        ("{model: vertex_ai/gemini-2.0-flash}", {}, "no credentials"),
        ("{model: watsonx/ibm/granite-13b, api_key: k}", {}, "project_id or space_id"),
        ("{model: cloudflare/@cf/meta/llama-3-8b, api_key: k}", {}, "no Cloudflare account id"),
    ],
)
def test_missing_provider_configuration_is_reported(
    tmp_path: Path, params: str, env: dict[str, str], expected: str
) -> None:
    # An error when serving, a warning in `tianji check` (like a missing env variable).
    strict = _problems(tmp_path, params, env, strict=True)
    assert any(p.startswith("error: deployment 'm': ") and expected in p for p in strict)
    lenient = _problems(tmp_path, params, env, strict=False)
    assert lenient == [p.replace("error: ", "warning: ", 1) for p in strict]


@pytest.mark.parametrize(
    ("params", "env"),
    [
        (
            "{model: bedrock/amazon.nova-lite-v1:0}",
            {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-1"},
        ),
        (
            "{model: bedrock/amazon.nova-lite-v1:0, aws_region_name: us-east-1}",
            {"AWS_BEARER_TOKEN_BEDROCK": "bk"},
        ),
        (
            "{model: vertex_ai/gemini-2.0-flash, vertex_project: p}",
            {"GOOGLE_APPLICATION_CREDENTIALS": "/x.json"},
        ),
        ("{model: watsonx/ibm/granite-13b, api_key: k, project_id: p}", {}),
        ("{model: cloudflare/0123abcd/@cf/meta/llama-3-8b, api_key: k}", {}),
        ("{model: cloudflare/@cf/meta/llama-3-8b, api_key: k}", {"CLOUDFLARE_ACCOUNT_ID": "a"}),
    ],
)
def test_complete_configuration_passes(tmp_path: Path, params: str, env: dict[str, str]) -> None:
    assert _problems(tmp_path, params, env, strict=True) == []
