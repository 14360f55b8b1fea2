"""codegen: generated files are fresh, and they agree with the specs and the app."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

try:
    import jsonschema
except ImportError:  # an optional test dependency; the freshness tests run without it
    jsonschema = None

from codegen import OUTPUT_DIR, render_all, stale_files, unexpected_files
from codegen.__main__ import main
from codegen.openapi import openapi_path, path_parameters
from codegen.schemas import RECOGNISED_DESCRIPTION
from codegen.sources import PROVIDERS, QUICKSTART, REPO_ROOT, ROUTES
from tianji._generated import names
from tianji.compile.pipeline import build
from tianji.spec.config import RECOGNISED_ONLY
from tianji.spec.source import load_yaml

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def rendered() -> dict[Path, str]:
    return render_all()


def _load(path: Path) -> Any:
    """The data tianji's loader sees (same YAML scalar rules)."""
    doc, problems = load_yaml(path)
    assert doc is not None, problems
    return doc.data


def _json(name: str) -> Any:
    return json.loads((OUTPUT_DIR / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- freshness


def test_generated_files_are_fresh(rendered: dict[Path, str]) -> None:
    stale = [str(p.relative_to(REPO_ROOT)) for p in stale_files(rendered)]
    extra = [str(p.relative_to(REPO_ROOT)) for p in unexpected_files(rendered)]
    assert not stale, f"stale generated files {stale}: run `python -m codegen`"
    assert not extra, f"files in tianji/_generated not made by codegen: {extra}"


def test_rendering_is_deterministic(rendered: dict[Path, str]) -> None:
    assert render_all() == rendered
    for path, content in rendered.items():
        assert content.endswith("\n"), path
        if path.suffix == ".json":
            value = json.loads(content)
            assert content == json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + (
                "\n"
            )


def test_stale_and_missing_files_are_reported(tmp_path: Path) -> None:
    fresh, changed, missing = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    fresh.write_text("{}\n")
    changed.write_text("{}\n")
    (tmp_path / "leftover.json").write_text("{}\n")
    files = {fresh: "{}\n", changed: '{"x": 1}\n', missing: "{}\n"}
    assert stale_files(files) == [changed, missing]
    assert unexpected_files(files, tmp_path) == [tmp_path / "leftover.json"]


def test_check_mode_exits_zero_when_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- JSON Schemas

needs_jsonschema = pytest.mark.skipif(jsonschema is None, reason="jsonschema is not installed")


def _validator(name: str) -> Any:
    schema = _json(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(name: str, data: Any) -> list[str]:
    return [e.message for e in _validator(name).iter_errors(data)]


@needs_jsonschema
@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("routes.schema.json", ROUTES),
        ("providers.schema.json", PROVIDERS),
        *[("config.schema.json", p) for p in EXAMPLES],
    ],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_schemas_accept_the_shipped_files(schema: str, path: Path) -> None:
    assert _errors(schema, _load(path)) == []


def test_yaml_files_point_at_their_schema() -> None:
    for path, name in ((ROUTES, "routes"), (PROVIDERS, "providers")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema=tianji/_generated/{name}.schema.json"


@needs_jsonschema
def test_schemas_reject_a_misspelt_key() -> None:
    routes = copy.deepcopy(_load(ROUTES))
    routes["routes"][0]["pathh"] = routes["routes"][0].pop("path")
    assert any("pathh" in m for m in _errors("routes.schema.json", routes))

    providers = copy.deepcopy(_load(PROVIDERS))
    providers["providers"]["openai"]["key_envs"] = ["X"]
    assert any("key_envs" in m for m in _errors("providers.schema.json", providers))

    config = copy.deepcopy(_load(QUICKSTART))
    config["general_setings"] = config.pop("general_settings")
    assert any("general_setings" in m for m in _errors("config.schema.json", config))
    config = copy.deepcopy(_load(QUICKSTART))
    config["model_list"][0]["litellm_params"]["api_bse"] = "http://x"
    assert any("api_bse" in m for m in _errors("config.schema.json", config))


@needs_jsonschema
def test_config_schema_rejects_wrong_types() -> None:
    config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "x", "rpm": "ten"}}]}
    assert _errors("config.schema.json", config)
    assert _errors("config.schema.json", {"router_settings": {"routing_strategy": "random"}})


@needs_jsonschema
def test_config_schema_allows_recognised_litellm_settings() -> None:
    schema = _json("config.schema.json")
    for section, keys in RECOGNISED_ONLY.items():
        config: dict[str, Any] = {key: {"any": ["value"]} for key in keys}
        if section:
            config = {section: config}
        assert _errors("config.schema.json", config) == [], section
    described = schema["$defs"]["LitellmSettings"]["properties"]["success_callback"]
    assert described == {"description": RECOGNISED_DESCRIPTION}


@needs_jsonschema
def test_config_schema_allows_environment_references() -> None:
    config = {
        "model_list": [
            {
                "model_name": "m",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_key": "os.environ/OPENAI_API_KEY",
                    "rpm": "os.environ/RPM",
                    "drop_params": "os.environ/DROP",
                },
            }
        ],
        "router_settings": {"routing_strategy": "os.environ/STRATEGY"},
    }
    assert _errors("config.schema.json", config) == []


# --------------------------------------------------------------------------- OpenAPI


@pytest.fixture(scope="module")
def served() -> set[tuple[str, str]]:
    """(path, method) as mounted on the Litestar app built from the quickstart config."""
    built, problems = build(QUICKSTART, routes=ROUTES, providers=PROVIDERS, env={})
    assert built is not None, problems
    pairs = set()
    for route in built.app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in getattr(route, "route_handlers", ()):
            plan = handler.opt.get("plan")
            if plan is None:  # Litestar's own OPTIONS handler
                continue
            assert path == (openapi_path(plan.path) or "/")
            pairs |= {(path, m) for m in handler.http_methods if m in plan.methods}
    return pairs


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }


def test_openapi_lists_every_served_route(served: set[tuple[str, str]]) -> None:
    doc = _json("openapi.json")
    assert doc["openapi"].startswith("3.1")
    assert set(_operations(doc)) == served


def test_openapi_operation_ids_are_unique() -> None:
    ids = Counter(op["operationId"] for op in _operations(_json("openapi.json")).values())
    assert [i for i, n in ids.items() if n > 1] == []


def test_openapi_operations() -> None:
    doc = _json("openapi.json")
    ops = _operations(doc)
    for (path, _), op in ops.items():
        declared = [p["name"] for p in op.get("parameters", ()) if p["in"] == "path"]
        assert declared == path_parameters(path), path
    chat = ops["/v1/chat/completions", "POST"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatRequest"
    }
    assert chat["security"] == [{"bearer": []}]
    assert chat["responses"]["default"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    form = ops["/v1/audio/transcriptions", "POST"]["requestBody"]["content"]
    assert set(form["multipart/form-data"]["schema"]["properties"]) == {"file", "model"}
    assert "security" not in ops["/health/liveliness", "GET"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


@needs_jsonschema
def test_openapi_component_schemas_are_valid_json_schema() -> None:
    doc = _json("openapi.json")
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


# --------------------------------------------------------------------------- names


def test_route_ids_match_routes_yaml() -> None:
    routes = _load(ROUTES)["routes"]
    assert {r["id"] for r in routes} == names.ROUTE_IDS
    assert {r["operation"] for r in routes} == names.OPERATIONS


def test_provider_names_match_providers_yaml() -> None:
    providers = _load(PROVIDERS)["providers"]
    expected = set(providers) | {a for p in providers.values() for a in p.get("aliases", ())}
    assert expected == names.PROVIDER_NAMES
