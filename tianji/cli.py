"""The `tianji` command: serve | check."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
    check = sub.add_parser("check", help="validate the specs and config; open nothing")
    _spec_args(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args)
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


def _serve(args: argparse.Namespace) -> int:
    from tianji.compile.pipeline import build

    built, problems = build(args.config, routes=args.routes, providers=args.providers)
    for problem in problems:
        print(problem.render(), file=sys.stderr)
    if built is None:
        return 1
    import uvicorn

    if args.workers > 1:
        # Workers re-import the app from the environment (uvicorn's factory mode).
        os.environ["TIANJI_CONFIG"] = str(args.config or "")
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
