"""Link and plan providers.yaml: defaults applied, adapters and parameter sets resolved."""

from __future__ import annotations

from collections.abc import Callable, Collection
from types import MappingProxyType

from tianji.compile.model import ProviderKind
from tianji.spec.providers import ProviderSpec, ProvidersSpec
from tianji.spec.source import Located, Problem

__all__ = ["plan_providers"]

# Operations served without an upstream path of their own (relayed by route path).
PATHLESS_OPERATIONS = frozenset({"forward"})


def plan_providers(
    spec: ProvidersSpec,
    doc: Located,
    *,
    adapters: Collection[str],
    load_adapter: Callable[[str], object] | None = None,
) -> tuple[dict[str, ProviderKind], list[Problem]]:
    """One ProviderKind per name and per alias. `load_adapter` imports each adapter
    used, so a broken adapter module is a startup problem, not a first-request crash."""
    problems: list[Problem] = []
    kinds: dict[str, ProviderKind] = {}
    for name, entry in spec.providers.items():
        where = ("providers", name)
        problems += _check(name, entry, spec, doc, where, adapters)
        if load_adapter is not None and entry.adapter in adapters:
            try:
                load_adapter(entry.adapter)
            except Exception as exc:
                problems.append(
                    doc.problem(
                        (*where, "adapter"), f"adapter {entry.adapter!r} failed to load: {exc!r}"
                    )
                )
        kind = _plan(name, entry, spec)
        for alias in (name, *entry.aliases):
            if alias in kinds:
                problems.append(
                    doc.problem((*where, "aliases"), f"provider name {alias!r} is declared twice")
                )
            kinds[alias] = kind
    return kinds, problems


def _check(
    name: str,
    entry: ProviderSpec,
    spec: ProvidersSpec,
    doc: Located,
    where: tuple[str, ...],
    adapters: Collection[str],
) -> list[Problem]:
    problems = []

    def report(field: str, message: str, *sub: str) -> None:
        problems.append(doc.problem((*where, field, *sub), message))

    if entry.adapter not in adapters:
        report(
            "adapter", f"unknown adapter {entry.adapter!r} (known: {', '.join(sorted(adapters))})"
        )
    for op in entry.operations:
        if (
            op not in PATHLESS_OPERATIONS
            and op not in entry.paths
            and op not in spec.defaults.paths
        ):
            report("operations", f"operation {op!r} has no path (set paths.{op} or defaults.paths)")
    for op, param_set in entry.params.items():
        if param_set not in spec.param_sets:
            report("params", f"unknown parameter set {param_set!r}", op)
    if entry.auth.kind in ("header", "query") and not entry.auth.name:
        report("auth", f"auth kind {entry.auth.kind!r} needs a name")
    return problems


def _plan(name: str, entry: ProviderSpec, spec: ProvidersSpec) -> ProviderKind:
    paths = {op: entry.paths.get(op) or spec.defaults.paths.get(op, "") for op in entry.operations}
    param_names = {**spec.defaults.params, **entry.params}
    params = {
        op: frozenset(spec.param_sets.get(set_name, ()))
        for op, set_name in param_names.items()
        if op in entry.operations
    }
    return ProviderKind(
        name=name,
        adapter=entry.adapter,
        title=entry.title or name,
        base_url=entry.base_url,
        base_url_env=tuple(entry.base_url_env),
        key_env=tuple(entry.key_env),
        api_version_env=tuple(entry.api_version_env),
        auth=entry.auth,
        headers=MappingProxyType(dict(entry.headers)),
        param_headers=MappingProxyType(dict(entry.param_headers)),
        paths=MappingProxyType(paths),
        params=MappingProxyType(params),
        param_renames=MappingProxyType(dict(entry.param_renames)),
    )
