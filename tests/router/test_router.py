"""Weighted simple-shuffle."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from tianji.compile.pipeline import build
from tianji.router import Router


def test_weights_spread_the_load(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("""
model_list:
  - model_name: m
    litellm_params: {model: openai/a, api_key: k, weight: 3}
  - model_name: m
    litellm_params: {model: openai/b, api_key: k, weight: 1}
  - model_name: m
    litellm_params: {model: openai/c, api_key: k, weight: 0}
""")
    built, problems = build(config, env={})
    assert built is not None, problems
    group = built.gateway.models.groups["m"]
    router = Router(random.Random(7))
    counts = Counter(router.pick(group).model for _ in range(4000))
    assert counts["c"] == 0
    assert 2.5 < counts["a"] / counts["b"] < 3.5
