"""tianji.spec.source: YAML loading with lines, and checks that report every problem."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import yaml

from tianji.spec.source import Located, Problem, convert, format_path, load_yaml, validate

# --------------------------------------------------------------------------- test types


class Route(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    path: str
    method: Literal["GET", "POST"] = "GET"
    timeout: float = 30.0
    tags: list[str] = []

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError("path must start with '/'")


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    rpm: Annotated[int, msgspec.Meta(ge=1)]


class Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    upstream: str
    limits: Limits | None = None


class OpenAI(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag="openai",
    tag_field="kind",
):
    api_key: str


class Anthropic(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag="anthropic",
    tag_field="kind",
):
    version: str


class Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    routes: list[Route] = []
    models: dict[str, Model] = {}
    providers: list[OpenAI | Anthropic] = []


class Point(msgspec.Struct, frozen=True, array_like=True):
    x: int
    y: int


class Shape(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    points: list[Point]


def load(tmp_path: Path, text: str, name: str = "routes.yaml") -> tuple[Located, list[Problem]]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    located, problems = load_yaml(path, display_name=name)
    assert located is not None, problems
    return located, problems


def check(tmp_path: Path, text: str) -> list[str]:
    """Load, expect a clean load, validate against Spec; the rendered problems."""
    located, problems = load(tmp_path, text)
    assert problems == []
    return [p.render() for p in validate(located.data, Spec, located)]


# --------------------------------------------------------------------------- validate


def test_unknown_field_in_third_entry_has_its_line_and_a_suggestion(tmp_path: Path) -> None:
    rendered = check(
        tmp_path,
        """
        routes:
          - path: /a
          - path: /b
          - path: /c
            mehtod: GET
        """,
    )
    assert rendered == [
        "routes.yaml:5: routes[2].mehtod: unknown field 'mehtod' (did you mean 'method'?)"
    ]


def test_unknown_field_without_a_close_name_has_no_suggestion(tmp_path: Path) -> None:
    rendered = check(tmp_path, "routes:\n  - path: /a\n    zzzzzz: 1\n")
    assert rendered == ["routes.yaml:3: routes[0].zzzzzz: unknown field 'zzzzzz'"]


def test_every_unknown_field_of_every_entry_is_reported(tmp_path: Path) -> None:
    rendered = check(
        tmp_path,
        """
        routes:
          - path: /a
            pathh: /a
          - path: /b
          - path: /c
            timout: 3
        """,
    )
    assert rendered == [
        "routes.yaml:3: routes[0].pathh: unknown field 'pathh' (did you mean 'path'?)",
        "routes.yaml:6: routes[2].timout: unknown field 'timout' (did you mean 'timeout'?)",
    ]


def test_missing_required_field_is_reported_at_the_entry(tmp_path: Path) -> None:
    rendered = check(
        tmp_path,
        """
        routes:
          - path: /a
          - method: POST
            timeout: 5
        """,
    )
    assert rendered == ["routes.yaml:3: routes[1]: missing required field 'path'"]


def test_wrong_type_at_a_nested_field(tmp_path: Path) -> None:
    rendered = check(
        tmp_path,
        """
        routes:
          - path: /a
            tags:
              - public
              - 42
            timeout: fast
        """,
    )
    assert rendered == [
        "routes.yaml:5: routes[0].tags[1]: expected str, got int",
        "routes.yaml:6: routes[0].timeout: expected float, got str",
    ]


def test_strings_are_not_coerced_but_ints_are_accepted_as_floats(tmp_path: Path) -> None:
    located, _ = load(tmp_path, "models:\n  m:\n    upstream: u\n    limits: {rpm: '60'}\n")
    problems = validate(located.data, Spec, located)
    assert [(p.line, p.path, p.message) for p in problems] == [
        (4, "models.m.limits.rpm", "expected int, got str")
    ]
    route, problems = convert({"path": "/a", "timeout": 5}, Route, located)
    assert problems == []
    assert route is not None
    assert route.timeout == 5.0
    assert isinstance(route.timeout, float)


def test_literal_mismatch_lists_the_allowed_values(tmp_path: Path) -> None:
    rendered = check(tmp_path, "routes:\n  - path: /a\n    method: PUT\n")
    assert rendered == ["routes.yaml:3: routes[0].method: expected one of 'GET', 'POST', got 'PUT'"]


def test_tagged_union_with_an_unknown_tag(tmp_path: Path) -> None:
    rendered = check(
        tmp_path,
        """
        providers:
          - kind: openai
            api_key: sk
          - kind: gemini
            api_key: x
          - api_key: y
          - kind: anthropic
            api_key: z
        """,
    )
    # The tag picks the Struct: entry 3 is checked as Anthropic, not as OpenAI.
    assert rendered == [
        "routes.yaml:4: providers[1].kind: expected one of 'openai', 'anthropic', got 'gemini'",
        "routes.yaml:6: providers[2]: missing required field 'kind' (one of 'openai', 'anthropic')",
        "routes.yaml:7: providers[3]: missing required field 'version'",
        "routes.yaml:8: providers[3].api_key: unknown field 'api_key'",
    ]


def test_optional_struct(tmp_path: Path) -> None:
    rendered = check(
        tmp_path,
        """
        models:
          plain:
            upstream: a
          nulled:
            upstream: b
            limits: null
          bad:
            upstream: c
            limits:
              rpm: 0
          wrong:
            upstream: d
            limits: [1]
        """,
    )
    assert rendered == [
        "routes.yaml:10: models.bad.limits.rpm: expected int >= 1",
        "routes.yaml:13: models.wrong.limits: expected mapping | null, got list",
    ]


def test_dict_of_structs_reports_each_value_with_quoted_keys(tmp_path: Path) -> None:
    rendered = check(
        tmp_path,
        """
        models:
          gpt-4o:
            upstrem: openai/gpt-4o
          claude:
            upstream: 7
        """,
    )
    assert rendered == [
        "routes.yaml:2: models[\"gpt-4o\"]: missing required field 'upstream'",
        "routes.yaml:3: models[\"gpt-4o\"].upstrem: unknown field 'upstrem'"
        " (did you mean 'upstream'?)",
        "routes.yaml:5: models.claude.upstream: expected str, got int",
    ]


def test_post_init_errors_are_located_even_inside_dict_values(tmp_path: Path) -> None:
    class Table(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
        by_name: dict[str, Route]

    located, _ = load(tmp_path, "by_name:\n  a:\n    path: /ok\n  b:\n    path: nope\n")
    problems = validate(located.data, Table, located)
    assert [p.render() for p in problems] == ["routes.yaml:4: by_name.b: path must start with '/'"]


def test_wrong_root_type(tmp_path: Path) -> None:
    located, _ = load(tmp_path, "- 1\n- 2\n")
    problems = validate(located.data, Spec, located)
    assert [p.render() for p in problems] == ["routes.yaml:1: <root>: expected mapping, got list"]


def test_validate_with_a_base_path_reports_full_paths(tmp_path: Path) -> None:
    located, _ = load(tmp_path, "spec:\n  routes:\n    - path: /a\n      bad: 1\n")
    problems = validate(located.data["spec"], Spec, located, ("spec",))
    assert [p.render() for p in problems] == [
        "routes.yaml:4: spec.routes[0].bad: unknown field 'bad'"
    ]


def test_types_the_walker_leaves_to_msgspec_keep_the_inner_path(tmp_path: Path) -> None:
    located, _ = load(tmp_path, "points:\n  - [1, 2]\n  - [3, oops]\n")
    problems = validate(located.data, Shape, located)
    assert [p.render() for p in problems] == ["routes.yaml:3: points[1][1]: expected int, got str"]


# --------------------------------------------------------------------------- convert


def test_valid_document_converts_to_the_struct(tmp_path: Path) -> None:
    located, problems = load(
        tmp_path,
        """
        routes:
          - path: /v1/chat
            method: POST
            timeout: 10
        models:
          gpt-4o:
            upstream: openai/gpt-4o
            limits: {rpm: 60}
        providers:
          - kind: anthropic
            version: "2023-06-01"
        """,
    )
    assert problems == []
    spec, problems = convert(located.data, Spec, located)
    assert problems == []
    assert spec == Spec(
        routes=[Route(path="/v1/chat", method="POST", timeout=10.0)],
        models={"gpt-4o": Model(upstream="openai/gpt-4o", limits=Limits(rpm=60))},
        providers=[Anthropic(version="2023-06-01")],
    )


def test_convert_returns_none_and_all_problems_on_error(tmp_path: Path) -> None:
    located, _ = load(tmp_path, "routes:\n  - path: /a\n    x: 1\n  - path: /b\n    y: 2\n")
    spec, problems = convert(located.data, Spec, located)
    assert spec is None
    assert [p.path for p in problems] == ["routes[0].x", "routes[1].y"]


def test_convert_maps_a_msgspec_failure_to_its_line(tmp_path: Path) -> None:
    located, _ = load(tmp_path, "routes:\n  - path: /a\n  - path: b\n")
    routes, problems = convert(located.data["routes"], list[Route], located, ("routes",))
    assert routes is None
    assert [p.render() for p in problems] == ["routes.yaml:3: routes[1]: path must start with '/'"]


# --------------------------------------------------------------------------- load_yaml


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    located, problems = load(
        tmp_path,
        """
        routes:
          - path: /a
            method: GET
            method: POST
        """,
    )
    assert [p.render() for p in problems] == [
        "routes.yaml:4: routes[0].method: duplicate key 'method' (first defined on line 3)"
    ]
    assert problems[0].severity == "error"
    assert located.data == {"routes": [{"path": "/a", "method": "GET"}]}


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - path: /a\n    tags: [a, b\n  - path: /b\n", encoding="utf-8")
    located, problems = load_yaml(path, display_name="routes.yaml")
    assert located is None
    assert len(problems) == 1
    assert problems[0].line == 4
    assert problems[0].path == "<root>"
    assert problems[0].message.startswith("invalid YAML: ")
    assert "line 3" in problems[0].message  # where the unclosed flow sequence started


def test_missing_file_is_a_problem_at_line_zero(tmp_path: Path) -> None:
    located, problems = load_yaml(tmp_path / "nope.yaml")
    assert located is None
    assert [(p.line, p.message) for p in problems] == [(0, "file not found")]
    assert problems[0].file == str(tmp_path / "nope.yaml")


def test_empty_file_gives_none(tmp_path: Path) -> None:
    located, problems = load(tmp_path, "# nothing here\n")
    assert problems == []
    assert located.data is None


def test_yaml_11_scalars_resolve_like_safe_loader(tmp_path: Path) -> None:
    text = """
        i: 0x1f
        f: 1.5e+3
        not_f: 1.5e3
        b: yes
        off: off
        n: ~
        s: "1"
        inf: .inf
        d: 2024-01-01
        """
    located, problems = load(tmp_path, text)
    assert problems == []
    assert located.data == {
        "i": 31,
        "f": 1500.0,
        "not_f": "1.5e3",  # YAML 1.1 floats need a signed exponent, as in PyYAML
        "b": True,
        False: False,  # `off` is a bool even as a key
        "n": None,
        "s": "1",
        "inf": float("inf"),
        "d": "2024-01-01",  # timestamps stay strings (documented deviation)
    }
    expected = yaml.safe_load(textwrap.dedent(text))
    expected["d"] = "2024-01-01"
    assert located.data == expected


def test_unknown_tag_is_a_problem(tmp_path: Path) -> None:
    located, problems = load(tmp_path, "a: 1\nb: !env HOME\n")
    assert [(p.line, p.path) for p in problems] == [(2, "b")]
    assert "!env" in problems[0].message
    assert located.data == {"a": 1, "b": None}


def test_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    located, problems = load(
        tmp_path,
        """
        defaults: &defaults
          method: POST
          timeout: 5
        slow: &slow
          timeout: 60
          tags: [slow]
        routes:
          - <<: *defaults
            path: /a
          - <<: [*slow, *defaults]
            path: /b
            method: GET
          - *defaults
        """,
    )
    assert problems == []
    routes = located.data["routes"]
    assert routes[0] == {"method": "POST", "timeout": 5, "path": "/a"}
    # Earlier merge sources win, explicit keys win over all of them.
    assert routes[1] == {"timeout": 60, "tags": ["slow"], "method": "GET", "path": "/b"}
    # Merged keys are located where they are written: in the anchored mapping.
    assert located.line(("routes", 0, "timeout")) == 3
    assert located.line(("routes", 1, "tags", 0)) == 6
    assert located.line(("routes", 1, "method")) == 12
    # A plain alias: its missing `path` is reported where the anchor is written.
    rendered = [
        p.render() for p in validate(located.data["routes"], list[Route], located, ("routes",))
    ]
    assert rendered == ["routes.yaml:1: routes[2]: missing required field 'path'"]


def test_line_of_a_missing_path_is_its_nearest_ancestor(tmp_path: Path) -> None:
    located, _ = load(tmp_path, "a:\n  b:\n    - c: 1\n      d e: 2\n")
    assert located.line(()) == 1
    assert located.line(("a", "b")) == 2
    assert located.line(("a", "b", 0)) == 3
    assert located.line(("a", "b", 0, "d e")) == 4
    assert located.line(("a", "b", 0, "nope", "deeper")) == 3
    assert located.line(("a", "b", 7)) == 2
    assert located.line(("zz",)) == 1


def test_format_path() -> None:
    assert format_path(()) == "<root>"
    assert format_path(("routes", 2, "path")) == "routes[2].path"
    assert format_path(("models", "a/b", "x")) == 'models["a/b"].x'
    assert format_path(("a b",)) == '["a b"]'
    assert format_path((0, "x")) == "[0].x"


def test_problem_render_and_as_dict() -> None:
    error = Problem("routes.yaml", 7, "routes[2].path", "expected str, got int")
    warning = Problem("config.yaml", 3, "general_settings.foo", "ignored", severity="warning")
    assert error.render() == "routes.yaml:7: routes[2].path: expected str, got int"
    assert warning.render() == "config.yaml:3: general_settings.foo: warning: ignored"
    assert warning.as_dict() == {
        "file": "config.yaml",
        "line": 3,
        "path": "general_settings.foo",
        "message": "ignored",
        "severity": "warning",
    }
