"""Adding an OpenAI-compatible provider is one YAML entry, no Python."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.conftest import MASTER_KEY, running_gateway
from tests.support.fake_upstream import FakeUpstream
from tianji.spec.loader import default_spec_dir

pytestmark = pytest.mark.timeout(30)


def test_new_provider_is_one_yaml_entry(upstream: FakeUpstream, tmp_path: Path) -> None:
    providers = tmp_path / "providers.yaml"
    shipped = (default_spec_dir() / "providers.yaml").read_text()
    providers.write_text(
        shipped
        + f"""
  acme:
    title: ACME Inference
    base_url: {upstream.base_url}
    key_env: [ACME_API_KEY]
    headers: {{X-Acme-Client: tianji}}
    operations: [chat, embeddings]
"""
    )
    config = f"""
model_list:
  - model_name: acme-large
    litellm_params: {{model: acme/large-v2}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    with running_gateway(
        config, tmp_path, providers=providers, env={"ACME_API_KEY": "acme-secret"}
    ) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)
        reply = client.chat.completions.create(
            model="acme-large", messages=[{"role": "user", "content": "ping"}]
        )
        assert reply.choices[0].message.content == "echo: ping"
        with pytest.raises(openai.BadRequestError, match="does not support"):
            client.audio.speech.create(model="acme-large", voice="x", input="y")
    seen = upstream.requests[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.json["model"] == "large-v2"
    assert seen.headers["authorization"] == "Bearer acme-secret"
    assert seen.headers["x-acme-client"] == "tianji"
    assert len(upstream.requests) == 1


def test_github_models_entry(upstream: FakeUpstream, tmp_path: Path) -> None:
    """GitHub Models is a plain entry; api_base overrides only the URL, auth stays Bearer."""
    config = f"""
model_list:
  - model_name: gh-4o
    litellm_params: {{model: github/gpt-4o, api_base: {upstream.root_url}}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    with running_gateway(config, tmp_path, env={"GITHUB_TOKEN": "ghp_test"}) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=MASTER_KEY, max_retries=0)
        client.chat.completions.create(model="gh-4o", messages=[{"role": "user", "content": "x"}])
    seen = upstream.requests[0]
    assert seen.path == "/chat/completions"
    assert seen.headers["authorization"] == "Bearer ghp_test"
    assert seen.json["model"] == "gpt-4o"
