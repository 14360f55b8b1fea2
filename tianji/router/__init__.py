"""Deployment choice inside a model group.

simple-shuffle: a weighted random pick (`weight`, else `rpm`/`tpm` as weights,
as LiteLLM does). Cooldowns, retries and fallbacks plug in here later.
"""

from __future__ import annotations

import random

from tianji.compile.model import Deployment, ModelGroup

__all__ = ["Router"]


class Router:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._weights: dict[str, list[float]] = {}

    def pick(self, group: ModelGroup) -> Deployment:
        deployments = group.deployments
        if len(deployments) == 1:
            return deployments[0]
        weights = self._weights.get(group.name)
        if weights is None:
            weights = [_weight(d) for d in deployments]
            self._weights[group.name] = weights
        return self._rng.choices(deployments, weights=weights)[0]


def _weight(deployment: Deployment) -> float:
    params = deployment.params
    if params.weight is not None:
        return max(params.weight, 0.0)
    return float(params.rpm or params.tpm or 1)
