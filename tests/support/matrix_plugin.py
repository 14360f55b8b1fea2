"""pytest plugin: `--matrix-json=PATH` writes the translation-matrix markers of the
collected tests ({provider: [features]}) so codegen can render docs/translation-matrix.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--matrix-json", default=None, help="write matrix markers as JSON")


def pytest_collection_finish(session: pytest.Session) -> None:
    path = session.config.getoption("--matrix-json")
    if not path:
        return
    found: dict[str, set[str]] = {}
    for item in session.items:
        for marker in item.iter_markers("matrix"):
            provider, feature = marker.args
            found.setdefault(provider, set()).add(feature)
    Path(path).write_text(json.dumps({p: sorted(f) for p, f in sorted(found.items())}))
