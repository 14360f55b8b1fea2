"""ASGI entry point for servers that import the app themselves (multi-worker)."""

from __future__ import annotations

import os
from pathlib import Path

from litestar import Litestar

__all__ = ["create_app"]


def create_app() -> Litestar:
    from tianji.compile.pipeline import build

    config = os.environ.get("TIANJI_CONFIG")
    built, problems = build(Path(config) if config else None)
    if built is None:
        raise SystemExit("\n".join(p.render() for p in problems))
    return built.app
