#!/usr/bin/env bash
# The production stack on this machine, step by step as on a real server (docs/operations.md):
# PostgreSQL databases for the ledger and for Prefect, a Prefect server on PostgreSQL (task-run
# recorder tuned), the `wangjian` process work pool with its SMTP limit and its automations, the
# ledger initialised, every deployment of prefect.yaml, and the workers.
#
#   scripts/stack.sh up       start it; what is already running is kept (safe to run again)
#   scripts/stack.sh down     stop the workers, then the server; runs still going after a grace
#                             period are rescheduled, for a worker to resume when one is back
#   scripts/stack.sh status   what runs, and where
#   scripts/stack.sh env      the environment to talk to it: eval "$(scripts/stack.sh env)"
#   scripts/stack.sh drop     down, then drop both databases and the state folder
#
# Settings, from the environment [default]:
#   WANGJIAN_STACK_DIR          [var/stack] state: pids, logs, PREFECT_HOME, stack.env
#   WANGJIAN_STACK_PYTHON       [the project's, via uv] the interpreter with Wangjian installed
#   WANGJIAN_STACK_PG           [postgresql://postgres@127.0.0.1:5432] the PostgreSQL server
#   WANGJIAN_STACK_LEDGER_DB    [wangjian] the campaign's ledger
#   WANGJIAN_STACK_PREFECT_DB   [wangjian_prefect] Prefect's own database (rebuildable)
#   WANGJIAN_STACK_PORT         [4200] the Prefect API and UI
#   WANGJIAN_STACK_WORKERS      [2] workers; WANGJIAN_STACK_WORKER_LIMIT [2] runs at once each
#   WANGJIAN_STACK_POLL         [5] seconds between a worker's polls of the pool
#   WANGJIAN_STACK_SILENCE      [90] seconds without a heartbeat (runs send one every 30 s,
#                               prefect.yaml) after which a run's worker is presumed dead
#   WANGJIAN_STACK_SMTP_SLOTS   [1] send batches talking to the relay at once, all workers
#   WANGJIAN_STACK_SCHEDULES    [on] `off`: deploy with every schedule off (staging, tests)
#   WANGJIAN_STACK_GRACE        [10] seconds `down` lets runs finish before rescheduling them
# Everything else (WANGJIAN_SMTP_*, WANGJIAN_MAIL_FROM, WANGJIAN_ENV, WANGJIAN_REPORTS_DIR, …) is
# passed to the workers, and so to every flow run, as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STACK_DIR="$(mkdir -p "${WANGJIAN_STACK_DIR:-$ROOT/var/stack}" && cd "${WANGJIAN_STACK_DIR:-$ROOT/var/stack}" && pwd)"
PG="${WANGJIAN_STACK_PG:-postgresql://postgres@127.0.0.1:5432}"
PG="${PG%/}"
LEDGER_DB="${WANGJIAN_STACK_LEDGER_DB:-wangjian}"
PREFECT_DB="${WANGJIAN_STACK_PREFECT_DB:-wangjian_prefect}"
PORT="${WANGJIAN_STACK_PORT:-4200}"
WORKERS="${WANGJIAN_STACK_WORKERS:-2}"
WORKER_LIMIT="${WANGJIAN_STACK_WORKER_LIMIT:-2}"
POLL="${WANGJIAN_STACK_POLL:-5}"
SILENCE="${WANGJIAN_STACK_SILENCE:-90}"
SMTP_SLOTS="${WANGJIAN_STACK_SMTP_SLOTS:-1}"
SCHEDULES="${WANGJIAN_STACK_SCHEDULES:-on}"
GRACE="${WANGJIAN_STACK_GRACE:-10}"

API_URL="http://127.0.0.1:$PORT/api"
LEDGER_URL="${PG#*://}"
LEDGER_URL="postgresql://$LEDGER_URL/$LEDGER_DB"
PREFECT_DB_URL="postgresql+asyncpg://${PG#*://}/$PREFECT_DB"
mkdir -p "$STACK_DIR/logs" "$STACK_DIR/prefect"

say() { printf '• %s\n' "$*" >&2; }

python_bin() {
  # The project's interpreter (uv keeps it in sync with uv.lock, unless WANGJIAN_STACK_PYTHON
  # names one); long-running processes are started with it directly so that their pid is the
  # process itself.
  if [ -n "${WANGJIAN_STACK_PYTHON:-}" ]; then
    echo "$WANGJIAN_STACK_PYTHON"
    return
  fi
  (cd "$ROOT" && uv sync --frozen --quiet && uv run --frozen --no-sync python -c 'import sys; print(sys.executable)')
}

# The environment every stack process shares: where the API, the ledger and the code are.
stack_env() {
  cat <<EOF
export PREFECT_API_URL='$API_URL'
export PREFECT_HOME='$STACK_DIR/prefect'
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export DO_NOT_TRACK=1
export WANGJIAN_HOME='$ROOT'
export WANGJIAN_DATABASE_URL='$LEDGER_URL'
EOF
}

pid_of() { cat "$STACK_DIR/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid="$(pid_of "$1")"; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

start() {  # start NAME COMMAND… — in its own session (a process group we can stop whole)
  local name="$1"
  shift
  if alive "$name"; then
    say "$name already running (pid $(pid_of "$name"))"
    return
  fi
  setsid "$@" >>"$STACK_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/$name.pid"
  say "$name started (pid $!, log $STACK_DIR/logs/$name.log)"
}

descendants() {  # every process below PID, deepest last
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$child"
    descendants "$child"
  done
}

stop() {  # stop NAME — its process group, then whatever it started that is still there
  local name="$1" pid pids
  pid="$(pid_of "$name")"
  rm -f "$STACK_DIR/$name.pid"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then return; fi
  pids="$pid $(descendants "$pid" | tr '\n' ' ')"
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    # shellcheck disable=SC2086
    if ! kill -0 $pids 2>/dev/null; then break; fi
    sleep 0.25
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  say "$name stopped"
}

stop_worker() {  # stop_worker NAME PYTHON — let its runs finish for GRACE seconds; reschedule
  # the others for a worker to run again, then stop it. (Flow runs are started in their own
  # sessions: they must be found through the worker's process tree.)
  local name="$1" py="$2" pid runs left
  pid="$(pid_of "$name")"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$STACK_DIR/$name.pid"
    return
  fi
  runs="$(descendants "$pid" | tr '\n' ' ')"
  kill -TERM "$pid" 2>/dev/null || true  # takes no more runs
  for _ in $(seq 1 $((GRACE * 4))); do
    left=""
    for run in $runs; do kill -0 "$run" 2>/dev/null && left="$left $run"; done
    [ -z "$left" ] && break
    sleep 0.25
  done
  if [ -n "${left:-}" ]; then
    # shellcheck disable=SC2086
    "$py" -m wangjian.stack release $left >&2 || true
    # The worker first, so that it cannot report its killed runs as crashed; then the runs,
    # with a signal the engine cannot answer with a state of its own.
    kill -KILL -- "-$pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
  fi
  stop "$name"
}

up() {
  local py
  py="$(python_bin)"
  stack_env >"$STACK_DIR/stack.env"
  # shellcheck disable=SC1091
  . "$STACK_DIR/stack.env"

  say "databases on $PG: $LEDGER_DB (ledger), $PREFECT_DB (Prefect)"
  "$py" -m wangjian.stack databases create "$PG/postgres" "$LEDGER_DB" "$PREFECT_DB" >&2

  # The server, on PostgreSQL, with the task-run recorder's measured batch settings.
  if ! alive server; then
    local tuning
    tuning="$("$py" -c 'from wangjian.orchestration import SERVER_TUNING as t; print(" ".join(f"{k}={v}" for k, v in t.items()))')"
    # shellcheck disable=SC2086
    start server env $tuning \
      PREFECT_API_DATABASE_CONNECTION_URL="$PREFECT_DB_URL" \
      PREFECT_SERVER_API_HOST=127.0.0.1 PREFECT_SERVER_API_PORT="$PORT" \
      "$py" -m prefect server start --host 127.0.0.1 --port "$PORT"
  fi
  # The ledger's schema and the campaign's configuration, while the server starts.
  say "ledger: wangjian init"
  (cd "$ROOT" && "$(dirname "$py")/wangjian" init >&2)
  "$py" -m wangjian.stack wait "$API_URL" --timeout 180 >&2 || {
    tail -n 30 "$STACK_DIR/logs/server.log" >&2
    exit 1
  }
  say "Prefect API $API_URL (UI http://127.0.0.1:$PORT)"

  "$py" -m wangjian.stack configure --pool wangjian --smtp-slots "$SMTP_SLOTS" --silence "$SILENCE" >&2

  say "deployments: prefect deploy --all"
  (cd "$ROOT" && "$py" -m prefect --no-prompt deploy --all >"$STACK_DIR/logs/deploy.log" 2>&1) || {
    tail -n 40 "$STACK_DIR/logs/deploy.log" >&2
    exit 1
  }
  if [ "$SCHEDULES" = off ]; then
    "$py" -m wangjian.stack schedules off >&2
  fi

  local i
  for i in $(seq 1 "$WORKERS"); do
    start "worker-$i" env \
      WANGJIAN_SMTP_CONCURRENCY_LIMIT=wangjian-smtp \
      PREFECT_WORKER_QUERY_SECONDS="$POLL" PREFECT_WORKER_PREFETCH_SECONDS="$POLL" \
      "$py" -m prefect worker start --pool wangjian --type process \
      --name "wangjian-worker-$i" --limit "$WORKER_LIMIT"
  done
  say "up: eval \"\$(scripts/stack.sh env)\" to use it from a shell"
}

down() {
  local name py
  py="$(python_bin)"
  # shellcheck disable=SC1091
  [ -e "$STACK_DIR/stack.env" ] && . "$STACK_DIR/stack.env"
  for pidfile in "$STACK_DIR"/worker-*.pid; do
    [ -e "$pidfile" ] || continue
    name="$(basename "$pidfile" .pid)"
    stop_worker "$name" "$py"
  done
  stop server
}

status() {
  local name
  for pidfile in "$STACK_DIR"/*.pid; do
    [ -e "$pidfile" ] || continue
    name="$(basename "$pidfile" .pid)"
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: dead"; fi
  done
  echo "API: $API_URL   ledger: $LEDGER_URL   state: $STACK_DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) stack_env ;;
  drop)
    down
    "$(python_bin)" -m wangjian.stack databases drop "$PG/postgres" "$LEDGER_DB" "$PREFECT_DB" >&2
    rm -rf "$STACK_DIR/logs" "$STACK_DIR/prefect" "$STACK_DIR/stack.env"
    rmdir "$STACK_DIR" 2>/dev/null || true
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 64
    ;;
esac
