"""The inputs of every renderer, loaded once through tianji's own pipeline.

Going through `load_specs` and `build` (rather than reading the YAML here) means
the artefacts describe exactly what `tianji serve` would serve: same defaults,
same alias expansion, same validation. The environment is fixed to empty so the
output does not depend on the machine that renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tianji.compile.model import RoutePlan
from tianji.compile.pipeline import build
from tianji.spec.loader import load_specs
from tianji.spec.providers import ProvidersSpec
from tianji.spec.routes import RoutesSpec
from tianji.spec.source import Problem

__all__ = ["QUICKSTART", "REPO_ROOT", "SourceError", "Sources", "load_sources"]

REPO_ROOT = Path(__file__).resolve().parent.parent
ROUTES = REPO_ROOT / "routes.yaml"
PROVIDERS = REPO_ROOT / "providers.yaml"
# The app documented by openapi.json; any valid config gives the same routes.
QUICKSTART = REPO_ROOT / "examples" / "quickstart.yaml"


class SourceError(Exception):
    """The shipped specs do not load or compile; nothing can be rendered from them."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(p.render() for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Sources:
    routes: RoutesSpec
    providers: ProvidersSpec
    # The compiled route plans, one per (route or alias, mount prefix).
    plans: tuple[RoutePlan, ...]


def load_sources() -> Sources:
    """Load routes.yaml and providers.yaml and compile them with the quickstart config."""
    specs, problems = load_specs(ROUTES, PROVIDERS, None, env={}, strict_env=False)
    built, found = build(QUICKSTART, routes=ROUTES, providers=PROVIDERS, env={}, strict_env=False)
    errors = [p for p in problems + found if p.severity == "error"]
    if specs is None or built is None or errors:
        raise SourceError(errors)
    return Sources(specs.routes, specs.providers, built.gateway.routes)
