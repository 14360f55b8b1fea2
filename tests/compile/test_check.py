"""`tianji check`: every kind of spec error, with its file, line and path.

One fixture per error kind (tests/compile/fixtures/*.config.yaml) for the operator
config; errors in routes.yaml / providers.yaml are made by copying the shipped file
into tmp_path and applying one small textual edit, so these tests keep working when
the shipped files grow. Expected line numbers are always computed from the file
under test (the edited line, or a fixture line found by its text), never hard-coded.

Every test runs the real CLI entry point (`tianji.cli.main`) in-process; a few run
`python -m tianji check` as a subprocess to prove the console path works too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tianji.cli import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHIPPED_ROUTES = REPO / "routes.yaml"
SHIPPED_PROVIDERS = REPO / "providers.yaml"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))

OK_LINE = re.compile(r"^ok: (\d+) routes, (\d+) model groups, (\d+) provider kinds$")
# file:line: path: [warning: ]message (the first ":<digits>: " ends the file name).
PROBLEM_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<path>\S+): (?P<message>.*)$")

# Environment variables the fixtures rely on being unset.
UNSET_ENV = ("NOPE_X", "HOSTED_VLLM_API_BASE")


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Found:
    """One problem line of the text output."""

    file: str
    line: int
    path: str
    message: str

    @property
    def is_warning(self) -> bool:
        return self.message.startswith("warning: ")


@dataclass(frozen=True)
class Result:
    rc: int
    out: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def problems(self) -> list[Found]:
        found = []
        for text in self.lines:
            if OK_LINE.match(text):
                continue
            match = PROBLEM_LINE.match(text)
            assert match, f"not a problem line: {text!r}"
            found.append(Found(match["file"], int(match["line"]), match["path"], match["message"]))
        return found

    @property
    def errors(self) -> list[Found]:
        return [p for p in self.problems if not p.is_warning]

    @property
    def warnings(self) -> list[Found]:
        return [p for p in self.problems if p.is_warning]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in UNSET_ENV:
        monkeypatch.delenv(name, raising=False)


def check(
    capsys: pytest.CaptureFixture[str],
    *,
    config: Path | None = None,
    routes: Path | None = None,
    providers: Path | None = None,
    fmt: str | None = None,
) -> Result:
    """Run `tianji check` in-process through the real entry point."""
    argv = ["check"]
    if config is not None:
        argv += ["--config", str(config)]
    if routes is not None:
        argv += ["--routes", str(routes)]
    if providers is not None:
        argv += ["--providers", str(providers)]
    if fmt is not None:
        argv += ["--format", fmt]
    capsys.readouterr()  # drop anything printed before
    rc = main(argv)
    captured = capsys.readouterr()
    assert captured.err == "", captured.err
    return Result(rc, captured.out)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m tianji ...` as a subprocess (the console path)."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    return subprocess.run(
        [sys.executable, "-m", "tianji", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def fixture(name: str) -> Path:
    path = FIXTURES / name
    assert path.is_file(), path
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the only line of `path` that contains `needle`."""
    hits = [n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text]
    assert len(hits) == 1, f"{needle!r} is on lines {hits} of {path}"
    return hits[0]


def shipped_line(shipped: Path, pattern: str) -> str:
    """The one full line of a shipped spec matching the regex `pattern`."""
    hits = re.findall(pattern, shipped.read_text(), flags=re.M)
    assert len(hits) == 1, f"{pattern!r} matches {len(hits)} lines of {shipped}"
    return str(hits[0])


def edit_shipped(tmp_path: Path, shipped: Path, old: str, new: str) -> Path:
    """Copy a shipped spec into tmp_path, replacing the one occurrence of `old` by `new`."""
    text = shipped.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {shipped}"
    copy = tmp_path / shipped.name
    copy.write_text(text.replace(old, new))
    return copy


def insert_after_shipped(
    tmp_path: Path, shipped: Path, anchor: str, added: str
) -> tuple[Path, int]:
    """Copy a shipped spec with the line `added` inserted after the line `anchor`.

    Returns the copy and the line number of the inserted line.
    """
    text = shipped.read_text()
    lines = text.splitlines()
    assert lines.count(anchor) == 1, f"{anchor!r} is not one whole line of {shipped}"
    inserted_at = lines.index(anchor) + 2  # 1-based, the line after the anchor
    copy = edit_shipped(tmp_path, shipped, anchor + "\n", anchor + "\n" + added + "\n")
    assert copy.read_text().splitlines()[inserted_at - 1] == added
    return copy, inserted_at


def index_in(file: Path, section: str, **match: object) -> int:
    """The index of the one entry of the list `section` whose fields equal `match`."""
    entries = yaml.safe_load(file.read_text())[section]
    hits = [i for i, e in enumerate(entries) if all(e.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, f"{match} matches {section}{hits} of {file}"
    return hits[0]


def expected_ok_counts(config: Path | None) -> tuple[int, int]:
    """(model groups, provider kinds) the ok: line must report for the shipped specs."""
    providers = yaml.safe_load(SHIPPED_PROVIDERS.read_text())["providers"]
    kinds = sum(1 + len(entry.get("aliases", [])) for entry in providers.values())
    groups = 0
    if config is not None:
        data = yaml.safe_load(config.read_text()) or {}
        groups = len({entry["model_name"] for entry in data.get("model_list") or []})
    return groups, kinds


def expected_route_count() -> int:
    """Served (path, route) pairs: one per route or alias per prefix of its mount."""
    spec = yaml.safe_load(SHIPPED_ROUTES.read_text())
    prefixes = {name: len(mount["prefixes"]) for name, mount in spec["mounts"].items()}
    served = sum(prefixes[route.get("mount", "root")] for route in spec["routes"])
    served += sum(prefixes[alias.get("mount") or "root"] for alias in spec.get("aliases", []))
    return served


# --------------------------------------------------------------------------- clean specs


def test_shipped_specs_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    result = check(capsys)
    assert result.rc == 0
    assert result.problems == []
    match = OK_LINE.match(result.lines[-1])
    assert match, result.out
    groups, kinds = expected_ok_counts(None)
    assert (int(match[1]), int(match[2]), int(match[3])) == (
        expected_route_count(),
        groups,
        kinds,
    )


def test_there_are_examples() -> None:
    assert REPO / "examples" / "quickstart.yaml" in EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_clean(capsys: pytest.CaptureFixture[str], example: Path) -> None:
    result = check(capsys, config=example)
    assert result.rc == 0, result.out
    assert result.errors == []
    match = OK_LINE.match(result.lines[-1])
    assert match, result.out
    groups, kinds = expected_ok_counts(example)
    assert (int(match[2]), int(match[3])) == (groups, kinds)


def test_quickstart_has_no_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    result = check(capsys, config=REPO / "examples" / "quickstart.yaml")
    assert result.rc == 0
    assert result.problems == [], result.out
    assert OK_LINE.match(result.lines[-1])


# --------------------------------------------------------------------------- routes.yaml


def test_misspelt_route_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = edit_shipped(
        tmp_path,
        SHIPPED_ROUTES,
        "{id: chat, path: /chat/completions",
        "{id: chat, pathh: /chat/completions",
    )
    line = line_of(routes, "pathh:")
    i = index_in(routes, "routes", id="chat")
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert not OK_LINE.match(result.lines[-1])
    assert set(result.errors) == {
        Found(
            str(routes),
            line,
            f"routes[{i}].pathh",
            "unknown field 'pathh' (did you mean 'path'?)",
        ),
        Found(str(routes), line, f"routes[{i}]", "missing required field 'path'"),
    }
    assert len(result.errors) == 2
    assert "unknown field 'pathh'" in result.out
    assert "did you mean 'path'" in result.out


def test_three_misspelt_route_keys_are_all_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHIPPED_ROUTES.read_text()
    edits = {
        "{id: chat, path:": ("{id: chat, pth:", "pth"),
        "{id: embeddings, path: /embeddings, methods:": (
            "{id: embeddings, path: /embeddings, method:",
            "method",
        ),
        "{id: moderation, path: /moderations, methods: [POST], operation:": (
            "{id: moderation, path: /moderations, methods: [POST], opertion:",
            "opertion",
        ),
    }
    for old, (new, _) in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    routes = tmp_path / "routes.yaml"
    routes.write_text(text)
    expected = {(line_of(routes, new), key) for new, key in edits.values()}
    result = check(capsys, routes=routes)
    assert result.rc == 1
    unknown = {
        (p.line, p.path.rsplit(".", 1)[1])
        for p in result.errors
        if p.message.startswith("unknown field")
    }
    assert unknown == expected
    assert len({line for line, _ in expected}) == 3
    # Each typo also leaves a required field missing, on the same line.
    missing = {p.line for p in result.errors if p.message.startswith("missing required field")}
    assert missing == {line for line, _ in expected}
    assert all(p.file == str(routes) for p in result.errors)


def test_duplicate_route_is_reported_at_the_second_declaration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = shipped_line(SHIPPED_ROUTES, r"^  - \{id: chat, .*$")
    twin = chat.replace("{id: chat,", "{id: chat_again,")
    routes, line = insert_after_shipped(tmp_path, SHIPPED_ROUTES, chat, twin)
    i = index_in(routes, "routes", id="chat_again")
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert result.errors, result.out
    assert {(p.file, p.line, p.path) for p in result.errors} == {
        (str(routes), line, f"routes[{i}]")
    }
    # One per prefix of the llm mount ("/v1" and ""), each naming the first route.
    assert sorted(p.message for p in result.errors) == [
        "duplicate route: POST /chat/completions is already served by 'chat'",
        "duplicate route: POST /v1/chat/completions is already served by 'chat'",
    ]


def test_route_declared_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The very same line twice: both problems point at the second copy."""
    chat = shipped_line(SHIPPED_ROUTES, r"^  - \{id: chat, .*$")
    routes, line = insert_after_shipped(tmp_path, SHIPPED_ROUTES, chat, chat)
    first = index_in(SHIPPED_ROUTES, "routes", id="chat")
    second = first + 1
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert sorted((p.line, p.path, p.message) for p in result.errors) == [
        (
            line,
            f"routes[{second}]",
            "duplicate route: POST /chat/completions is already served by 'chat'",
        ),
        (
            line,
            f"routes[{second}]",
            "duplicate route: POST /v1/chat/completions is already served by 'chat'",
        ),
        (line, f"routes[{second}].id", "duplicate route id 'chat'"),
    ]


def test_duplicate_route_with_another_param_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`/models/{x}` and `/models/{model_id}` are the same route for the router."""
    anchor = shipped_line(SHIPPED_ROUTES, r"^  - \{id: retrieve_model, .*$")
    added = '  - {id: model_again, path: "/models/{x}", methods: [GET], operation: retrieve_model}'
    routes, line = insert_after_shipped(tmp_path, SHIPPED_ROUTES, anchor, added)
    i = index_in(routes, "routes", id="model_again")
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert [(p.line, p.path, p.message) for p in result.errors] == [
        (
            line,
            f"routes[{i}]",
            "duplicate route: GET /models/{x} is already served by 'retrieve_model'",
        )
    ]


def test_duplicate_route_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchor = shipped_line(SHIPPED_ROUTES, r"^  - \{id: chat, .*$")
    added = "  - {id: chat, path: /chat2, methods: [POST], operation: chat}"
    routes, line = insert_after_shipped(tmp_path, SHIPPED_ROUTES, anchor, added)
    i = index_in(routes, "routes", path="/chat2")
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert [(p.line, p.path, p.message) for p in result.errors] == [
        (line, f"routes[{i}].id", "duplicate route id 'chat'")
    ]


def test_alias_target_is_not_a_route_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchor = shipped_line(SHIPPED_ROUTES, r"^  - \{path: /v2/rerank, target: rerank\}$")
    added = "  - {path: /nowhere, target: no_such_route}"
    routes, line = insert_after_shipped(tmp_path, SHIPPED_ROUTES, anchor, added)
    i = index_in(routes, "aliases", target="no_such_route")
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert result.errors == [
        Found(
            str(routes),
            line,
            f"aliases[{i}].target",
            "alias target 'no_such_route' is not a route id",
        )
    ]


def test_duplicate_alias_is_reported_at_the_second_declaration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = shipped_line(SHIPPED_ROUTES, r"^  - \{path: /v2/rerank, target: rerank\}$")
    routes, line = insert_after_shipped(tmp_path, SHIPPED_ROUTES, anchor, anchor)
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert [p.message for p in result.errors] == [
        "duplicate route: POST /v2/rerank is already served by 'rerank'"
    ]
    assert result.errors[0].line == line


def test_routes_yaml_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat = shipped_line(SHIPPED_ROUTES, r"^  - \{id: chat, .*$")
    assert "methods: [POST]," in chat
    routes = edit_shipped(tmp_path, SHIPPED_ROUTES, chat, chat.replace("[POST],", "[POST]],"))
    line = line_of(routes, "[POST]],")
    result = check(capsys, routes=routes)
    assert result.rc == 1
    assert result.errors == [
        Found(
            str(routes),
            line,
            "<root>",
            "invalid YAML: expected ',' or '}', but got ']' "
            f"(while parsing a flow mapping started on line {line})",
        )
    ]


def test_unclosed_flow_mapping_names_where_it_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = shipped_line(SHIPPED_ROUTES, r"^  - \{id: chat, .*$")
    routes = edit_shipped(tmp_path, SHIPPED_ROUTES, chat, chat.rstrip("}"))
    line = line_of(routes, "{id: chat, ")
    result = check(capsys, routes=routes)
    assert result.rc == 1
    [error] = result.errors
    assert (error.file, error.path) == (str(routes), "<root>")
    assert error.message.startswith("invalid YAML: ")
    # The parser notices on a later line; the message names where the mapping started.
    assert error.line > line
    assert error.message.endswith(f"(while parsing a flow mapping started on line {line})")


def test_routes_file_not_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.routes.yaml"
    result = check(capsys, routes=missing)
    assert result.rc == 1
    assert result.errors == [Found(str(missing), 0, "<root>", "file not found")]


# --------------------------------------------------------------------------- providers.yaml


def test_misspelt_provider_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    providers = edit_shipped(
        tmp_path,
        SHIPPED_PROVIDERS,
        "    base_url: https://api.openai.com/v1\n",
        "    base_ulr: https://api.openai.com/v1\n",
    )
    result = check(capsys, providers=providers)
    assert result.rc == 1
    assert result.errors == [
        Found(
            str(providers),
            line_of(providers, "base_ulr:"),
            "providers.openai.base_ulr",
            "unknown field 'base_ulr' (did you mean 'base_url'?)",
        )
    ]


def test_unknown_adapter_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    providers = edit_shipped(
        tmp_path, SHIPPED_PROVIDERS, "    adapter: azure\n", "    adapter: azuer\n"
    )
    result = check(capsys, providers=providers)
    assert result.rc == 1
    [error] = result.errors
    assert (error.file, error.line, error.path) == (
        str(providers),
        line_of(providers, "adapter: azuer"),
        "providers.azure.adapter",
    )
    assert error.message.startswith("unknown adapter 'azuer' (known: ")
    assert "openai_compat" in error.message


def test_provider_with_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    providers = edit_shipped(
        tmp_path,
        SHIPPED_PROVIDERS,
        "    base_url: https://api.openai.com/v1\n",
        "    base_url: [https://api.openai.com/v1]\n",
    )
    result = check(capsys, providers=providers)
    assert result.rc == 1
    assert [(p.line, p.path) for p in result.errors] == [
        (line_of(providers, "base_url: [https://api.openai.com/v1]"), "providers.openai.base_url")
    ]
    assert "got list" in result.errors[0].message


# --------------------------------------------------------------------------- operator config


@pytest.mark.parametrize(
    ("name", "needle", "path", "message"),
    [
        (
            "misspelt_model_list.config.yaml",
            "model_lst:",
            "model_lst",
            "unknown field 'model_lst' (did you mean 'model_list'?)",
        ),
        (
            "misspelt_litellm_params.config.yaml",
            "litellm_parms:",
            "model_list[1].litellm_parms",
            "unknown field 'litellm_parms' (did you mean 'litellm_params'?)",
        ),
        (
            "unknown_provider.config.yaml",
            "model: foo/bar",
            "model_list[1].litellm_params.model",
            "unknown provider 'foo' in model 'foo/bar'",
        ),
        (
            "both_params.config.yaml",
            "model_name: both",
            "model_list[0]",
            "set litellm_params or tianji_params, not both",
        ),
        (
            # No api_base key exists: the problem sits on its parent, litellm_params.
            "missing_api_base.config.yaml",
            "litellm_params:",
            "model_list[0].litellm_params.api_base",
            "provider 'hosted_vllm' has no default base URL: set api_base",
        ),
        (
            "yaml_syntax_error.config.yaml",
            "model: mock/a: oops",
            "<root>",
            "invalid YAML: mapping values are not allowed here",
        ),
    ],
    ids=[
        "misspelt_model_list",
        "misspelt_litellm_params",
        "unknown_provider",
        "both_params",
        "missing_api_base",
        "yaml_syntax_error",
    ],
)
def test_config_error(
    capsys: pytest.CaptureFixture[str], name: str, needle: str, path: str, message: str
) -> None:
    config = fixture(name)
    result = check(capsys, config=config)
    assert result.rc == 1
    assert result.errors == [Found(str(config), line_of(config, needle), path, message)]
    assert not any(OK_LINE.match(text) for text in result.lines)


def test_provider_base_url_env_stands_in_for_api_base(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart of missing_api_base: the provider's base_url_env is enough."""
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://localhost:8000/v1")
    result = check(capsys, config=fixture("missing_api_base.config.yaml"))
    assert result.rc == 0, result.out
    assert result.problems == []


def test_duplicate_yaml_key(capsys: pytest.CaptureFixture[str]) -> None:
    config = fixture("duplicate_key.config.yaml")
    first = line_of(config, "model: mock/a")
    result = check(capsys, config=config)
    assert result.rc == 1
    assert result.errors == [
        Found(
            str(config),
            line_of(config, "model: mock/b"),
            "model_list[0].litellm_params.model",
            f"duplicate key 'model' (first defined on line {first})",
        )
    ]


def test_three_misspelt_config_keys_are_all_reported(capsys: pytest.CaptureFixture[str]) -> None:
    config = fixture("three_typos.config.yaml")
    result = check(capsys, config=config)
    assert result.rc == 1
    assert result.errors == [
        Found(
            str(config),
            line_of(config, "api_bse:"),
            "model_list[0].litellm_params.api_bse",
            "unknown field 'api_bse' (did you mean 'api_base'?)",
        ),
        Found(
            str(config),
            line_of(config, "temprature:"),
            "model_list[1].litellm_params.temprature",
            "unknown field 'temprature' (did you mean 'temperature'?)",
        ),
        Found(
            str(config),
            line_of(config, "max_token:"),
            "model_list[2].litellm_params.max_token",
            "unknown field 'max_token' (did you mean 'max_tokens'?)",
        ),
    ]


def test_config_file_not_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    result = check(capsys, config=missing)
    assert result.rc == 1
    assert result.errors == [Found(str(missing), 0, "<root>", "file not found")]


def test_errors_in_all_three_files_are_all_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "p").mkdir()
    routes = edit_shipped(tmp_path / "r", SHIPPED_ROUTES, "{id: chat, path:", "{id: chat, pathh:")
    providers = edit_shipped(
        tmp_path / "p",
        SHIPPED_PROVIDERS,
        "    base_url: https://api.openai.com/v1\n",
        "    base_ulr: https://api.openai.com/v1\n",
    )
    config = fixture("misspelt_model_list.config.yaml")
    result = check(capsys, config=config, routes=routes, providers=providers)
    assert result.rc == 1
    assert {(p.file, p.line) for p in result.errors if p.message.startswith("unknown field")} == {
        (str(routes), line_of(routes, "pathh:")),
        (str(providers), line_of(providers, "base_ulr:")),
        (str(config), line_of(config, "model_lst:")),
    }


# --------------------------------------------------------------------------- warnings


@pytest.mark.parametrize(
    ("name", "needle", "path", "message"),
    [
        (
            "recognised_only.config.yaml",
            "success_callback:",
            "litellm_settings.success_callback",
            "recognised LiteLLM setting that tianji does not implement yet; ignored",
        ),
        (
            "missing_env.config.yaml",
            "os.environ/NOPE_X",
            "model_list[0].litellm_params.api_key",
            "environment variable NOPE_X is not set",
        ),
        (
            "no_master_key.config.yaml",
            "general_settings:",
            "general_settings",
            "no master_key: every request is accepted without a key",
        ),
    ],
    ids=["recognised_only", "missing_env", "no_master_key"],
)
def test_config_warning(
    capsys: pytest.CaptureFixture[str], name: str, needle: str, path: str, message: str
) -> None:
    config = fixture(name)
    result = check(capsys, config=config)
    assert result.rc == 0, result.out
    assert result.errors == []
    assert result.problems == [
        Found(str(config), line_of(config, needle), path, "warning: " + message)
    ]
    assert OK_LINE.match(result.lines[-1])


def test_environment_variables_section_satisfies_os_environ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        fixture("missing_env.config.yaml").read_text()
        + "environment_variables:\n  NOPE_X: sk-from-config\n"
    )
    result = check(capsys, config=config)
    assert result.rc == 0
    assert result.problems == []


def test_recognised_only_keys_do_not_hide_typos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A recognised-only key is a warning, a misspelt one next to it is still an error."""
    config = tmp_path / "config.yaml"
    config.write_text(
        fixture("recognised_only.config.yaml")
        .read_text()
        .replace("  success_callback:", "  drop_parms: true\n  success_callback:")
    )
    result = check(capsys, config=config)
    assert result.rc == 1
    assert [(p.line, p.path) for p in result.warnings] == [
        (line_of(config, "success_callback:"), "litellm_settings.success_callback")
    ]
    assert result.errors == [
        Found(
            str(config),
            line_of(config, "drop_parms:"),
            "litellm_settings.drop_parms",
            "unknown field 'drop_parms' (did you mean 'drop_params'?)",
        )
    ]


# --------------------------------------------------------------------------- --format json


def _as_text(problem: dict[str, object]) -> str:
    prefix = "warning: " if problem["severity"] == "warning" else ""
    return f"{problem['file']}:{problem['line']}: {problem['path']}: {prefix}{problem['message']}"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("errors_and_warnings.config.yaml", False), ("missing_env.config.yaml", True)],
    ids=["errors", "warnings_only"],
)
def test_json_has_the_same_problems_as_text(
    capsys: pytest.CaptureFixture[str], name: str, ok: bool
) -> None:
    config = fixture(name)
    text = check(capsys, config=config)
    as_json = check(capsys, config=config, fmt="json")
    assert as_json.rc == text.rc == (0 if ok else 1)
    report = json.loads(as_json.out)
    assert set(report) == {"ok", "problems"}
    assert report["ok"] is ok
    for problem in report["problems"]:
        assert set(problem) == {"file", "line", "path", "message", "severity"}
        assert problem["severity"] in ("error", "warning")
        assert isinstance(problem["line"], int)
    problem_lines = [t for t in text.lines if not OK_LINE.match(t)]
    assert [_as_text(p) for p in report["problems"]] == problem_lines
    assert any(p["severity"] == "warning" for p in report["problems"])
    assert any(p["severity"] == "error" for p in report["problems"]) is not ok


def test_json_severities_and_lines(capsys: pytest.CaptureFixture[str]) -> None:
    config = fixture("errors_and_warnings.config.yaml")
    result = check(capsys, config=config, fmt="json")
    report = json.loads(result.out)
    got = {(p["line"], p["path"], p["severity"]) for p in report["problems"]}
    assert got == {
        (line_of(config, "success_callback:"), "litellm_settings.success_callback", "warning"),
        (line_of(config, "NOPE_X"), "model_list[0].litellm_params.api_key", "warning"),
        (line_of(config, "model: foo/bar"), "model_list[0].litellm_params.model", "error"),
        (line_of(config, "model_name: both"), "model_list[1]", "error"),
        # No general_settings section at all: the warning sits on the document root.
        (1, "general_settings", "warning"),
    }
    assert {p["file"] for p in report["problems"]} == {str(config)}


def test_json_for_clean_specs(capsys: pytest.CaptureFixture[str]) -> None:
    result = check(capsys, config=REPO / "examples" / "quickstart.yaml", fmt="json")
    assert result.rc == 0
    assert json.loads(result.out) == {"ok": True, "problems": []}


# --------------------------------------------------------------------------- console path


def test_subprocess_clean(tmp_path: Path) -> None:
    proc = run_cli("check", "--config", str(REPO / "examples" / "quickstart.yaml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert OK_LINE.match(proc.stdout.splitlines()[-1]), proc.stdout


def test_subprocess_error(tmp_path: Path) -> None:
    routes = edit_shipped(
        tmp_path,
        SHIPPED_ROUTES,
        "{id: chat, path: /chat/completions",
        "{id: chat, pathh: /chat/completions",
    )
    line = line_of(routes, "pathh:")
    i = index_in(routes, "routes", id="chat")
    proc = run_cli("check", "--routes", str(routes), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert (
        f"{routes}:{line}: routes[{i}].pathh: unknown field 'pathh' (did you mean 'path'?)"
        in proc.stdout.splitlines()
    )
    assert "ok:" not in proc.stdout


def test_subprocess_warning_and_json(tmp_path: Path) -> None:
    config = fixture("missing_env.config.yaml")
    proc = run_cli("check", "--config", str(config), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "ok": True,
        "problems": [
            {
                "file": str(config),
                "line": line_of(config, "os.environ/NOPE_X"),
                "path": "model_list[0].litellm_params.api_key",
                "message": "environment variable NOPE_X is not set",
                "severity": "warning",
            }
        ],
    }


def test_a_broken_config_does_not_hide_spec_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config that does not load is reported, and routes.yaml is still linked in the
    same run: both problems come out at once."""
    routes = edit_shipped(
        tmp_path,
        SHIPPED_ROUTES,
        "{path: /v2/rerank, target: rerank}",
        "{path: /v2/rerank, target: rerankk}",
    )
    config = tmp_path / "config.yaml"
    config.write_text("model_lst: []\n")
    result = check(capsys, config=config, routes=routes)
    assert result.rc == 1
    messages = [line.split(": ", 2)[-1] for line in result.lines]
    assert any("unknown field 'model_lst'" in m for m in messages)
    assert "alias target 'rerankk' is not a route id" in messages
