#!/usr/bin/env bash
# Gateway benchmark of tianji with the shared harness (nginx mock upstream + wrk).
#
#   bench/run.sh                 the standard suite: direct + tianji, pinned and
#                                unpinned, then the overhead table (~10+ min)
#   MODE=pinned bench/run.sh     one harness run of tianji only, in that mode
#   bench/run.sh direct          one harness run of wrk -> nginx (MODE as above)
#   SCENARIOS=json RUNS=1 DURATION=5 MODE=pinned bench/run.sh    quick smoke run
#
# Every harness knob passes through the environment (MODE, SCENARIOS, RUNS,
# DURATION, CONNS, WARMUP, C1_DURATION, WORKERS, PORT, QUIET_*, ...; see the
# top of the harness's run.sh). The harness is found at $SHARED_BENCH, default
# <repo>/../shared/bench. It is treated as read-only: it is copied into a
# scratch folder whose results/ points at bench/results/ here (git-ignored).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
SHARED_BENCH="${SHARED_BENCH:-$REPO/../shared/bench}"

for f in run.sh run-all.sh report.py post.lua nginx.conf nginx-delayed.conf; do
  [[ -f "$SHARED_BENCH/$f" ]] || {
    echo "harness not found: $SHARED_BENCH/$f (set SHARED_BENCH)" >&2; exit 2; }
done
[[ -x "$REPO/.venv/bin/tianji" ]] || { echo "no $REPO/.venv/bin/tianji (pip install -e . first)" >&2; exit 2; }

# What tianji runs as, inside the harness (it sets BENCH_HOST, BENCH_PORT,
# BENCH_WORKERS, BENCH_KEY and BENCH_UPSTREAM_JSON/_STREAM/_DELAYED). A
# TIANJI_CMD already in the environment wins (e.g. to try another ASGI server).
export TIANJI_CWD="$REPO"
default_cmd='exec .venv/bin/tianji serve --config bench/tianji.yaml --host "$BENCH_HOST" --port "$BENCH_PORT" --workers "$BENCH_WORKERS"'
export TIANJI_CMD="${TIANJI_CMD:-$default_cmd}"
export TIANJI_READY_PATH=/v1/models

# The harness writes results/ next to its own scripts: run a scratch copy of it
# whose results/ is a link to bench/results/.
mkdir -p "$HERE/results"
COPY="$(mktemp -d -t tianji-bench.XXXXXX)"
trap 'rm -rf "$COPY"' EXIT
cp "$SHARED_BENCH"/*.sh "$SHARED_BENCH"/*.py "$SHARED_BENCH"/*.lua \
   "$SHARED_BENCH"/*.conf "$SHARED_BENCH"/*.yaml "$COPY"/
chmod u+x "$COPY"/*.sh "$COPY"/*.py
ln -s "$HERE/results" "$COPY/results"
unset RESULTS_DIR

what="${1:-}"
if [[ -z "$what" ]]; then
  if [[ -n "${MODE:-}" ]]; then what=tianji; else what=all; fi
fi
case "$what" in
  all)           "$COPY/run-all.sh" tianji ;;
  tianji|direct) "$COPY/run.sh" "$what" ;;
  *) echo "usage: [MODE=pinned|unpinned] $0 [all|tianji|direct]" >&2; exit 2 ;;
esac
echo "results under ${HERE#"$REPO"/}/results/"
