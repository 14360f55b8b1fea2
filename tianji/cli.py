"""The `tianji` command: serve | check | migrate."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tianji.store import Store

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tianji", description="An OpenAI-compatible LLM gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the gateway")
    _spec_args(serve)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=4000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="warning")
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="refuse to start on a database schema that is behind (default: migrate it)",
    )
    check = sub.add_parser("check", help="validate the specs and config; open nothing")
    _spec_args(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    migrate = sub.add_parser("migrate", help="apply pending database migrations, then exit")
    _spec_args(migrate)
    migrate.add_argument(
        "--check", action="store_true", help="apply nothing; exit 1 if migrations are pending"
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args)
    if args.command == "migrate":
        return _migrate(args)
    return _serve(args)


def _spec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="operator config (LiteLLM config.yaml format)")
    parser.add_argument("--routes", type=Path, help="routes.yaml (default: the shipped one)")
    parser.add_argument("--providers", type=Path, help="providers.yaml (default: the shipped one)")


def _check(args: argparse.Namespace) -> int:
    from tianji.compile.pipeline import build

    built, problems = build(
        args.config, routes=args.routes, providers=args.providers, strict_env=False
    )
    errors = [p for p in problems if p.severity == "error"]
    if args.format == "json":
        print(json.dumps({"ok": not errors, "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for problem in problems:
            print(problem.render())
        if built is not None:
            print(
                f"ok: {len(built.gateway.routes)} routes, "
                f"{len(built.gateway.models.groups)} model groups, "
                f"{len(built.gateway.providers)} provider kinds"
            )
    return 1 if errors else 0


async def _prepare(store: Store, *, migrate: bool) -> list[str]:
    """Open the database once (applying or checking migrations), then close it."""
    try:
        return await store.open(migrate=migrate)
    finally:
        await store.close()


def _migrate(args: argparse.Namespace) -> int:
    from tianji.compile.pipeline import build
    from tianji.errors import TianjiError

    built, problems = build(
        args.config, routes=args.routes, providers=args.providers, strict_env=False
    )
    for problem in problems:
        if problem.severity == "error":
            print(problem.render(), file=sys.stderr)
    if built is None:
        return 1
    store = built.runtime.store
    if store is None:
        print("nothing to migrate: without general_settings.master_key tianji opens no database")
        return 0
    where = store.target.redacted
    try:
        applied = asyncio.run(_prepare(store, migrate=not args.check))
    except (TianjiError, OSError) as exc:
        print(f"{where}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if args.check:
        print(f"{where}: the schema is up to date")
    elif applied:
        print(f"{where}: applied {len(applied)} migrations: {', '.join(applied)}")
    else:
        print(f"{where}: already up to date")
    return 0


def freeze_startup_objects() -> None:
    """Move everything built at startup (the app, plans, tokenizers) out of the garbage
    collector's reach. Under load a full collection otherwise walks them every ~2 s and
    stalls every open request for ~40 ms (measured: docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    from tianji.compile.pipeline import build
    from tianji.errors import TianjiError

    built, problems = build(args.config, routes=args.routes, providers=args.providers)
    for problem in problems:
        print(problem.render(), file=sys.stderr)
    if built is None:
        return 1
    store = built.runtime.store
    if store is not None:
        # Migrate (or check) before serving: a clear error instead of a failed startup.
        try:
            applied = asyncio.run(_prepare(store, migrate=not args.no_migrate))
        except (TianjiError, OSError) as exc:
            print(f"{store.target.redacted}: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 1
        if applied:
            print(f"{store.target.redacted}: applied {len(applied)} migrations", file=sys.stderr)
        built.runtime.migrate_on_start = not args.no_migrate
    import uvicorn

    if args.workers > 1:
        # Workers re-import the app from the environment (uvicorn's factory mode).
        for name, value in (
            ("TIANJI_CONFIG", args.config),
            ("TIANJI_ROUTES", args.routes),
            ("TIANJI_PROVIDERS", args.providers),
        ):
            os.environ[name] = str(value or "")
        uvicorn.run(
            "tianji.asgi:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            log_level=args.log_level,
            access_log=False,
        )
        return 0
    freeze_startup_objects()
    uvicorn.run(
        built.app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
