"""tianji/_generated/names.py: route ids, operations and provider names as Literal types.

Code that names a route or a provider (tests, the CLI, adapters) can then be
checked by mypy against the YAML instead of failing at run time on a typo. Each
Literal also exists as a frozenset for run-time membership tests.
"""

from __future__ import annotations

from collections.abc import Iterable

from codegen.schemas import GENERATED
from tianji.spec.providers import ProvidersSpec
from tianji.spec.routes import RoutesSpec

__all__ = ["HEADER", "names_module"]

HEADER = f"# {GENERATED}"

_DOCSTRING = '''"""Typed names of the shipped specs: route ids and operations of routes.yaml,
provider names (and their aliases) of providers.yaml."""'''


def names_module(routes: RoutesSpec, providers: ProvidersSpec) -> str:
    provider_names = set(providers.providers)
    for spec in providers.providers.values():
        provider_names.update(spec.aliases)
    groups = [
        ("RouteId", "ROUTE_IDS", {route.id for route in routes.routes}),
        ("Operation", "OPERATIONS", {route.operation for route in routes.routes}),
        ("ProviderName", "PROVIDER_NAMES", provider_names),
    ]
    exported = sorted(const for _, const, _ in groups) + sorted(alias for alias, _, _ in groups)
    lines = [
        HEADER,
        _DOCSTRING,
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final, Literal, get_args",
        "",
        "__all__ = [",
        *(f'    "{name}",' for name in exported),
        "]",
    ]
    for alias, const, values in groups:
        lines += ["", *_literal(alias, values)]
        lines.append(f"{const}: Final[frozenset[{alias}]] = frozenset(get_args({alias}))")
    return "\n".join(lines) + "\n"


def _literal(alias: str, values: Iterable[str]) -> list[str]:
    return [f"{alias} = Literal[", *(f'    "{v}",' for v in sorted(values)), "]"]
