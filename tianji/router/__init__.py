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
        # Group name -> (the group the weights were computed for, weights). The model
        # table is swapped when models change at run time: a cached entry counts only
        # for the very group object it was computed from.
        self._weights: dict[str, tuple[ModelGroup, list[float]]] = {}

    def pick(self, group: ModelGroup) -> Deployment:
        deployments = group.deployments
        if len(deployments) == 1:
            return deployments[0]
        cached = self._weights.get(group.name)
        if cached is None or cached[0] is not group:
            cached = (group, [_weight(d) for d in deployments])
            self._weights[group.name] = cached
        return self._rng.choices(deployments, weights=cached[1])[0]


def _weight(deployment: Deployment) -> float:
    params = deployment.params
    if params.weight is not None:
        return max(params.weight, 0.0)
    return float(params.rpm or params.tpm or 1)
