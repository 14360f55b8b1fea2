"""Load routes.yaml, providers.yaml and the operator config into Structs.

Reads files and nothing else. Every problem found is collected with its file
and line; a file that does not validate yields ``None`` for its Struct so the
caller can still report everything else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tianji.spec.config import RECOGNISED_ONLY, ConfigSpec
from tianji.spec.providers import ProvidersSpec
from tianji.spec.routes import RoutesSpec
from tianji.spec.source import Located, Problem, convert, format_path, load_yaml

__all__ = ["ENV_PREFIX", "Specs", "default_spec_dir", "load_specs"]

ENV_PREFIX = "os.environ/"

T = TypeVar("T")


def default_spec_dir() -> Path:
    """Where the shipped routes.yaml and providers.yaml live (the repo root / package)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent, here / "data"):
        if (candidate / "routes.yaml").is_file():
            return candidate
    return here.parent


@dataclass(frozen=True)
class Specs:
    routes: RoutesSpec
    routes_doc: Located
    providers: ProvidersSpec
    providers_doc: Located
    config: ConfigSpec
    config_doc: Located | None
    env: Mapping[str, str]


def load_specs(
    routes_path: Path,
    providers_path: Path,
    config_path: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    strict_env: bool = True,
) -> tuple[Specs | None, list[Problem]]:
    """Load and validate all three files. `strict_env`: a missing `os.environ/X`
    is an error (serve) or a warning (check, whose environment is rarely production's)."""
    problems: list[Problem] = []
    routes, routes_doc = _load(routes_path, RoutesSpec, problems)
    providers, providers_doc = _load(providers_path, ProvidersSpec, problems)
    config, config_doc, merged_env = _load_config(config_path, env, strict_env, problems)
    if config is None and routes is not None and providers is not None:
        # The config's own errors are reported; link the specs with an empty config
        # so their problems are reported in the same run rather than the next one.
        config, config_doc = ConfigSpec(), None
    if routes is None or providers is None or config is None:
        return None, problems
    assert routes_doc is not None and providers_doc is not None
    specs = Specs(routes, routes_doc, providers, providers_doc, config, config_doc, merged_env)
    return specs, problems


def _load(path: Path, typ: type[T], problems: list[Problem]) -> tuple[T | None, Located | None]:
    doc, found = load_yaml(path)
    problems.extend(found)
    if doc is None:
        return None, None
    value, found = convert(doc.data, typ, doc)
    problems.extend(found)
    return value, doc


def _load_config(
    path: Path | None,
    env: Mapping[str, str] | None,
    strict_env: bool,
    problems: list[Problem],
) -> tuple[ConfigSpec | None, Located | None, Mapping[str, str]]:
    base_env = dict(os.environ if env is None else env)
    if path is None:
        return ConfigSpec(), None, base_env
    doc, found = load_yaml(path)
    problems.extend(found)
    if doc is None:
        return None, None, base_env
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        problems.append(Problem(doc.file, 1, "", "the config must be a mapping"))
        return None, doc, base_env
    env_vars = data.get("environment_variables") or {}
    merged = {**base_env, **{str(k): str(v) for k, v in env_vars.items()}}
    data = _strip_recognised_only(data, doc, problems)
    data = _resolve_env(data, (), merged, doc, strict_env, problems)
    value, found = convert(data, ConfigSpec, doc)
    problems.extend(found)
    return value, doc, merged


def _strip_recognised_only(
    data: dict[str, Any], doc: Located, problems: list[Problem]
) -> dict[str, Any]:
    """Drop LiteLLM keys tianji does not act on yet, each reported as a warning."""
    out = dict(data)
    for section, names in RECOGNISED_ONLY.items():
        holder = out if section == "" else out.get(section)
        if not isinstance(holder, dict):
            continue
        holder = dict(holder)
        for key in [k for k in holder if k in names]:
            path = (section, key) if section else (key,)
            problems.append(
                Problem(
                    doc.file,
                    doc.line(path),
                    format_path(path),
                    "recognised LiteLLM setting that tianji does not implement yet; ignored",
                    "warning",
                )
            )
            del holder[key]
        if section:
            out[section] = holder
        else:
            out = holder
    return out


def _resolve_env(
    value: Any,
    path: tuple[str | int, ...],
    env: Mapping[str, str],
    doc: Located,
    strict: bool,
    problems: list[Problem],
) -> Any:
    """Replace every `os.environ/NAME` string by the variable's value (None if unset)."""
    if isinstance(value, dict):
        return {
            k: _resolve_env(v, (*path, k), env, doc, strict, problems) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _resolve_env(v, (*path, i), env, doc, strict, problems) for i, v in enumerate(value)
        ]
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name in env:
            return env[name]
        problems.append(
            Problem(
                doc.file,
                doc.line(path),
                format_path(path),
                f"environment variable {name} is not set",
                "error" if strict else "warning",
            )
        )
        return None
    return value
