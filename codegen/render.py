"""Render every generated file in memory, and compare the result with the disk.

Rendering never writes: `python -m codegen` writes what changed, `--check` and the
tests only compare, so a stale file is reported instead of silently fixed.
JSON is dumped with sorted keys, two-space indent and a trailing newline, so the
same sources always give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codegen.matrix import MATRIX_PATH, collect_markers, matrix_markdown
from codegen.names import names_module
from codegen.openapi import openapi_document
from codegen.schemas import spec_schemas
from codegen.sources import REPO_ROOT, load_sources

__all__ = ["OUTPUT_DIR", "dump_json", "render_all", "stale_files", "unexpected_files"]

OUTPUT_DIR = REPO_ROOT / "tianji" / "_generated"

_PACKAGE_DOC = '''"""Files rendered by `python -m codegen` from tianji's Structs and shipped specs.

Do not edit: change the source (the Structs, routes.yaml, providers.yaml) and
regenerate. `python -m codegen --check` tells whether these files are fresh.
"""
'''


def render_all() -> dict[Path, str]:
    """Absolute path -> content of every generated file."""
    sources = load_sources()
    files: dict[str, str] = {"__init__.py": _PACKAGE_DOC}
    for name, schema in spec_schemas().items():
        files[name] = dump_json(schema)
    files["openapi.json"] = dump_json(openapi_document(sources.plans))
    files["names.py"] = names_module(sources.routes, sources.providers)
    rendered = {OUTPUT_DIR / name: content for name, content in sorted(files.items())}
    rendered[MATRIX_PATH] = matrix_markdown(collect_markers())
    return rendered


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_files(files: Mapping[Path, str]) -> list[Path]:
    """Files that are missing or whose content differs from the rendering."""
    return [path for path, content in files.items() if _read(path) != content]


def unexpected_files(files: Mapping[Path, str], directory: Path = OUTPUT_DIR) -> list[Path]:
    """Files in the output directory that codegen does not render (leftovers)."""
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and path.suffix in {".py", ".json"} and path not in files
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
