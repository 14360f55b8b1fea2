"""ASGI entry point for servers that import the app themselves (multi-worker).

`tianji serve --workers N` passes its flags through the environment:
TIANJI_CONFIG, TIANJI_ROUTES and TIANJI_PROVIDERS (empty = the default).
"""

from __future__ import annotations

import os
from pathlib import Path

from litestar import Litestar

__all__ = ["create_app"]


def _path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def create_app() -> Litestar:
    from tianji.cli import freeze_startup_objects
    from tianji.compile.pipeline import build

    built, problems = build(
        _path("TIANJI_CONFIG"), routes=_path("TIANJI_ROUTES"), providers=_path("TIANJI_PROVIDERS")
    )
    if built is None:
        raise SystemExit("\n".join(p.render() for p in problems))
    freeze_startup_objects()
    return built.app
