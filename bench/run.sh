#!/usr/bin/env bash
# Gateway benchmark of tianji with the shared harness (nginx mock upstream + wrk).
#
#   bench/run.sh                 the standard suite: direct + tianji, pinned and
#                                unpinned, then the overhead table (~10+ min)
#   MODE=pinned bench/run.sh     one harness run of tianji only, in that mode
#   bench/run.sh direct          one harness run of wrk -> nginx (MODE as above)
#   SCENARIOS=json RUNS=1 DURATION=5 MODE=pinned bench/run.sh    quick smoke run
#   KEYS=1 MODE=pinned bench/run.sh    the same with virtual-key auth on: wrk
#                                sends a virtual key (BENCH_KEY) from a seeded
#                                SQLite database instead of the master key
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
CONFIG=bench/tianji.yaml
[[ "${KEYS:-0}" == 1 ]] && CONFIG=bench/tianji-keys.yaml
default_cmd="exec .venv/bin/tianji serve --config $CONFIG"' --host "$BENCH_HOST" --port "$BENCH_PORT" --workers "$BENCH_WORKERS"'
export TIANJI_CMD="${TIANJI_CMD:-$default_cmd}"
export TIANJI_READY_PATH=/v1/models

# The harness writes results/ next to its own scripts: run a scratch copy of it
# whose results/ is a link to bench/results/.
mkdir -p "$HERE/results"
COPY="$(mktemp -d -t tianji-bench.XXXXXX)"
KEYS_DIR=""
WATCH_PID=""
trap '[[ -n "$WATCH_PID" ]] && kill "$WATCH_PID" 2>/dev/null; rm -rf "$COPY" ${KEYS_DIR:+"$KEYS_DIR"}' EXIT
cp "$SHARED_BENCH"/*.sh "$SHARED_BENCH"/*.py "$SHARED_BENCH"/*.lua \
   "$SHARED_BENCH"/*.conf "$SHARED_BENCH"/*.yaml "$COPY"/
chmod u+x "$COPY"/*.sh "$COPY"/*.py
ln -s "$HERE/results" "$COPY/results"
unset RESULTS_DIR

# KEYS=1: a fresh SQLite database in a temp folder holding one virtual key
# (created through the gateway's own /key/generate by seed_key.py); the harness
# then sends that key as BENCH_KEY. The master key only serves the seeding.
if [[ "${KEYS:-0}" == 1 ]]; then
  KEYS_DIR="$(mktemp -d -t tianji-bench-keys.XXXXXX)"
  mkdir "$KEYS_DIR/db"   # only the SQLite files: the folder inotifywait watches
  DB_FILE="$KEYS_DIR/db/bench.db"
  export TIANJI_BENCH_DB="sqlite:///$DB_FILE"
  export TIANJI_BENCH_MASTER="${TIANJI_BENCH_MASTER:-sk-bench-master-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}"
  export BENCH_KEY="${BENCH_KEY:-sk-bench-virtual-key-0001}"
  "$REPO/.venv/bin/python" "$HERE/seed_key.py" --config "$HERE/tianji-keys.yaml" --key "$BENCH_KEY" \
    2> "$KEYS_DIR/seed.log" || { cat "$KEYS_DIR/seed.log" >&2; exit 1; }
fi
# Evidence that a cached virtual key costs no database round trip:
# - the SQLite files with size and mtime to the ns, before and after: a run
#   that writes the database shows up as a change;
# - with inotifywait (apt-get install inotify-tools), every open of the
#   database file during the run: tianji's SQLite engine opens a connection
#   per query (or transaction), so opens count round trips, at no cost to
#   the process measured.
db_state() { ls -l --time-style=+%H:%M:%S.%N "$DB_FILE"* | awk '{print $5, $6, $7}'; }
if [[ -n "$KEYS_DIR" ]]; then
  db_state > "$KEYS_DIR/db-before.txt"
  if command -v inotifywait > /dev/null; then
    inotifywait -m -q --timefmt %T --format '%T %e %f' -e open,modify "$KEYS_DIR/db" \
      > "$KEYS_DIR/db-events.txt" 2> /dev/null &
    WATCH_PID=$!
  fi
fi
before="$(ls "$HERE/results")"

what="${1:-}"
if [[ -z "$what" ]]; then
  if [[ -n "${MODE:-}" ]]; then what=tianji; else what=all; fi
fi
case "$what" in
  all)           "$COPY/run-all.sh" tianji ;;
  tianji|direct) "$COPY/run.sh" "$what" ;;
  *) echo "usage: [MODE=pinned|unpinned] $0 [all|tianji|direct]" >&2; exit 2 ;;
esac
if [[ -n "$KEYS_DIR" ]]; then
  [[ -n "$WATCH_PID" ]] && { kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null || true; }
  WATCH_PID=""
  # Into every results folder this run made: the key mode and the DB evidence.
  for dir in $(comm -13 <(echo "$before") <(ls "$HERE/results")); do
    { echo "# KEYS=1: BENCH_KEY is a virtual key ($CONFIG); SQLite files: size, mtime, name"
      echo "# before the harness started:"; sed "s#$KEYS_DIR#<keys>#" "$KEYS_DIR/db-before.txt"
      echo "# after it finished:"; db_state | sed "s#$KEYS_DIR#<keys>#"
      if [[ -f "$KEYS_DIR/db-events.txt" ]]; then
        echo "# inotify, whole harness run: opens of bench.db per second (time count)."
        echo "# Expected without per-request lookups: ~12 at startup (schema check, model"
        echo "# sync), the key load on the first request, one model-sync poll every 10 s"
        echo "# (proxy_config_reload_interval_seconds), key reloads after the 60 s cache TTL."
        awk '$2 ~ /OPEN/ && $3 == "bench.db" {print $1}' "$KEYS_DIR/db-events.txt" | uniq -c \
          | awk '{print $2, $1}'
        echo "# inotify: writes (MODIFY) to bench.db: $(awk '$2 ~ /MODIFY/ && $3 == "bench.db"' \
          "$KEYS_DIR/db-events.txt" | wc -l)"
      fi
    } > "$HERE/results/$dir/keys-db.txt"
    cat "$HERE/results/$dir/keys-db.txt"
  done
fi
echo "results under ${HERE#"$REPO"/}/results/"
