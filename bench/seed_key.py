"""Create the benchmark's virtual key through the gateway's own `POST /key/generate`.

    TIANJI_BENCH_MASTER=sk-... TIANJI_BENCH_DB=sqlite:////tmp/x/bench.db \\
        .venv/bin/python bench/seed_key.py --key sk-bench-virtual-0001

Starts `tianji serve` with the keys config (bench/tianji-keys.yaml) on a free
127.0.0.1 port, which creates and migrates the SQLite file, asks it with the
master key for a key with the given plaintext (LiteLLM's custom `key` field)
allowed to call the bench models, then stops that server. Going through the
endpoint rather than writing the row with the store keeps the stored key
exactly what an operator's /key/generate stores (defaults, key_name, audit
row), with no second copy of that logic here. Used by `KEYS=1 bench/run.sh`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_MODELS = [
    "gpt-4o-mini",
    "gpt-4o-mini-stream",
    "gpt-4o-mini-delayed",
    "text-embedding-3-small",
]
# The config resolves these at startup; the seeding server never calls an upstream.
PLACEHOLDER_UPSTREAMS = ("BENCH_UPSTREAM_JSON", "BENCH_UPSTREAM_STREAM", "BENCH_UPSTREAM_DELAYED")
HOST = "127.0.0.1"
# No proxy from the environment for 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_gateway(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for name in PLACEHOLDER_UPSTREAMS:
        env.setdefault(name, f"http://{HOST}:9/v1")
    command = [sys.executable, "-m", "tianji", "serve", "--config", str(config)]
    command += ["--host", HOST, "--port", str(port), "--workers", "1"]
    return subprocess.Popen(command, cwd=REPO, env=env)  # noqa: S603 - a fixed argv, no shell


def call(url: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    # S310: every URL here is http://127.0.0.1:<port>/..., built in this script
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with OPENER.open(request, timeout=10) as response:
        return json.loads(response.read())


def wait_ready(base: str, server: subprocess.Popen[bytes], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"tianji serve exited with {server.returncode} before answering")
        try:
            call(f"{base}/health/liveliness")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise SystemExit(f"tianji serve did not answer within {limit_s:.0f} s")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def generate(base: str, master: str, plaintext: str, models: list[str]) -> dict[str, Any]:
    body = {"key": plaintext, "models": models, "key_alias": "bench"}
    try:
        issued: dict[str, Any] = call(f"{base}/key/generate", body, key=master)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"/key/generate: HTTP {error.code}: {error.read().decode()}") from None
    if issued.get("key") != plaintext:
        raise SystemExit(f"/key/generate issued {issued.get('key_name')}, not the key asked for")
    return issued


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--key", required=True, help="plaintext: sk-..., at least 20 characters")
    parser.add_argument("--config", type=Path, default=REPO / "bench" / "tianji-keys.yaml")
    parser.add_argument("--models", nargs="+", default=BENCH_MODELS)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for serve")
    args = parser.parse_args()
    master = os.environ.get("TIANJI_BENCH_MASTER")
    if not master or not os.environ.get("TIANJI_BENCH_DB"):
        parser.error("set TIANJI_BENCH_MASTER and TIANJI_BENCH_DB (see bench/tianji-keys.yaml)")

    port = free_port()
    base = f"http://{HOST}:{port}"
    server = start_gateway(args.config, port)
    try:
        wait_ready(base, server, args.timeout)
        issued = generate(base, master, args.key, args.models)
    finally:
        stop(server)
    token = issued["token_id"][:12]
    print(f"virtual key {issued['key_name']} (token {token}…) models={args.models}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
