"""Model resolution: exact names, aliases (hidden or not), most specific wildcard."""

from __future__ import annotations

from pathlib import Path

from tianji.compile.pipeline import build

CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: "*"
    litellm_params: {model: "openai/*", api_key: k}
  - model_name: "groq/*"
    litellm_params: {model: "groq/*", api_key: k}
  - model_name: "groq/llama-*"
    litellm_params: {model: "groq/meta-llama-*", api_key: k, timeout: 7, stream_timeout: 3}
router_settings:
  model_group_alias:
    gpt-4: gpt-4o
    secret-4: {model: gpt-4o, hidden: true}
general_settings: {master_key: m}
"""


def _table(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    built, problems = build(path, env={})
    assert built is not None, [p.render() for p in problems]
    return built.gateway.models


def test_exact_alias_and_wildcards(tmp_path: Path) -> None:
    models = _table(tmp_path)
    exact = models.resolve("gpt-4o")
    assert exact is not None and exact.group.name == "gpt-4o" and exact.capture is None
    alias = models.resolve("gpt-4")
    assert alias is not None and alias.group.name == "gpt-4o"
    specific = models.resolve("groq/llama-3.1-8b")
    assert specific is not None and specific.group.name == "groq/llama-*"
    deployment = specific.group.deployments[0]
    assert deployment.upstream_model(specific.capture) == "meta-llama-3.1-8b"
    assert (deployment.timeouts.read, deployment.stream_timeouts.read) == (7, 3)
    broader = models.resolve("groq/mixtral")
    assert broader is not None and broader.group.name == "groq/*"
    catch_all = models.resolve("o3-mini")
    assert catch_all is not None and catch_all.group.name == "*"
    assert catch_all.group.deployments[0].upstream_model(catch_all.capture) == "o3-mini"


def test_hidden_aliases_are_not_listed(tmp_path: Path) -> None:
    names = _table(tmp_path).public_names()
    assert "gpt-4" in names and "secret-4" not in names
    assert "gpt-4o" in names and "groq/*" in names


def test_deployment_auth_headers_are_precomputed(tmp_path: Path) -> None:
    deployment = _table(tmp_path).groups["gpt-4o"].deployments[0]
    assert ("authorization", "Bearer k") in deployment.headers
    assert deployment.api_base == "https://api.openai.com/v1"
    # Stable across builds (so spend logs can refer to it), and not derived from the key.
    assert deployment.id == _table(tmp_path).groups["gpt-4o"].deployments[0].id
