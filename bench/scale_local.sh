#!/usr/bin/env bash
# The scale-out recipe of docs/scale.md on one machine, over loopback, all throwaway:
# a PostgreSQL cluster (initdb/pg_ctl) holding the Prefect server's database and the dossier
# store, an S3 API (moto's server) holding the archive (AES256 server-side encryption), a
# Prefect server on PostgreSQL, a process work pool with two workers, the deployments of
# prefect.yaml, MESSAGES lab results taken in, two drain runs, and a check that every message
# was filed exactly once. Nothing is downloaded. Everything it started is stopped at the end.
#
#   bench/scale_local.sh [MESSAGES]        (default 2000; KEEP=1 keeps the work folder)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
PREFECT="$ROOT/.venv/bin/prefect"
MESSAGES="${1:-2000}"
WORK="$(mktemp -d /tmp/dmp-scale-XXXXXX)"
chmod 711 "$WORK"  # the cluster may run as the postgres user
PIDS=()
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PG_BIN/initdb" ] || PG_BIN="$(dirname "$(command -v initdb)")"
AS_PG=()
[ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n== %s\n' "$*"; }

alive() { for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }

stop_all() {
    # Workers first, the server last. A Prefect worker's first SIGTERM starts a graceful
    # shutdown that can wait on the API; the second one ends it; SIGKILL after that.
    local sig pid
    [ -n "${PREFECT_API_URL:-}" ] && "$PREFECT" work-pool pause dmp-process >/dev/null 2>&1 || true
    for sig in TERM TERM KILL; do
        for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -s "$sig" "${PIDS[i]}" 2>/dev/null || true; done
        for _ in $(seq 1 20); do alive "${PIDS[@]}" || return 0; sleep 0.5; done
    done
}

cleanup() {
    local rc=$?
    say "stopping"
    stop_all
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -f "$WORK/pg/data/postmaster.pid" ] && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" \
        -m fast stop >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT INT TERM

say "PostgreSQL (throwaway cluster in $WORK/pg)"
PG_PORT="$(free_port)"
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/pg"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pg -c max_connections=200" >/dev/null
for db in prefect dmp; do "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$db"; done

say "S3 API (moto server)"
S3_PORT="$(free_port)"
"$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=eu-west-3
export PYTHONPATH="$ROOT" DMP_CODE_DIR="$ROOT" DMP_HOME="$WORK/home"
export DMP_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/dmp"
export DMP_ARCHIVE_URL="s3://dmp-archive/raw" DMP_S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
export DMP_S3_SSE=AES256 DMP_BATCH_SIZE=200 DMP_LEASE_SECONDS=120
export PREFECT_HOME="$WORK/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/prefect"

"$PY" - <<'PY'
import time, boto3, os
client = boto3.client("s3", endpoint_url=os.environ["DMP_S3_ENDPOINT_URL"])
for _ in range(100):
    try:
        client.create_bucket(Bucket="dmp-archive",
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        break
    except Exception:
        time.sleep(0.1)
PY

say "Prefect server on PostgreSQL"
PREFECT_PORT="$(free_port)"
export PREFECT_API_URL="http://127.0.0.1:$PREFECT_PORT/api"
"$PREFECT" server start --host 127.0.0.1 --port "$PREFECT_PORT" >"$WORK/prefect-server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 120); do
    curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS "$PREFECT_API_URL/health" >/dev/null || { tail -20 "$WORK/prefect-server.log"; exit 1; }

say "dossier store migrated, $MESSAGES messages taken in (archived on S3, ledger on PostgreSQL)"
"$PY" "$ROOT/cli.py" db upgrade
"$PY" - "$WORK" "$MESSAGES" <<'PY'
import sys
from pathlib import Path
from bench.drain_workers import prepare_ledger
from pipelines.settings import load_settings
print(prepare_ledger(load_settings(), Path(sys.argv[1]), int(sys.argv[2])), "rows received")
PY

say "work pool, deployments (prefect.yaml), two workers"
"$PREFECT" work-pool create dmp-process --type process >/dev/null
"$PREFECT" work-pool set-concurrency-limit dmp-process 4 >/dev/null
(cd "$ROOT" && "$PREFECT" --no-prompt deploy --all >"$WORK/deploy.log" 2>&1) \
    || { tail -30 "$WORK/deploy.log"; exit 1; }
"$PREFECT" deployment ls
for w in 1 2; do
    # one flow run at a time each, so that the two drains below go to both workers
    "$PREFECT" worker start --pool dmp-process --name "worker-$w" --limit 1 \
        >"$WORK/worker-$w.log" 2>&1 &
    PIDS+=($!)
done

say "two drain runs at once"
start=$(date +%s)
"$PREFECT" deployment run drain-ledger/drain --watch >"$WORK/run-1.log" 2>&1 &
r1=$!
"$PREFECT" deployment run drain-ledger/drain --watch >"$WORK/run-2.log" 2>&1 &
r2=$!
wait $r1 || { tail -20 "$WORK/run-1.log"; exit 1; }
wait $r2 || { tail -20 "$WORK/run-2.log"; exit 1; }
grep -hi "finished" "$WORK"/run-*.log || true
for w in 1 2; do
    echo "worker-$w ran $(grep -ci "submitting flow run" "$WORK/worker-$w.log" || true) flow run(s)"
done
echo "drained in $(( $(date +%s) - start )) s (Prefect scheduling and flow start included)"

say "check"
"$PY" - <<'PY'
import os, sys
import boto3
from bench.drain_workers import check_ledger
from dossiers.db import make_engine
from sqlalchemy import text

engine = make_engine(os.environ["DMP_DATABASE_URL"])
check = check_ledger(engine)
with engine.connect() as conn:
    workers = conn.execute(text("SELECT count(DISTINCT trigger) FROM import_attempts")).scalar()
print(f"ledger rows by status: {check.by_status}")
print(f"entries {check.entries}, one 'created' provenance each: "
      f"{check.entries_without_one_creation == 0}, rows with several outcomes: "
      f"{check.rows_with_several_outcomes}")
s3 = boto3.client("s3", endpoint_url=os.environ["DMP_S3_ENDPOINT_URL"])
key = s3.list_objects_v2(Bucket="dmp-archive", Prefix="raw/", MaxKeys=1)["Contents"][0]["Key"]
print("archive object encryption:", s3.head_object(Bucket="dmp-archive",
                                                   Key=key)["ServerSideEncryption"])
sys.exit(0 if check.exactly_once else 1)
PY
"$PREFECT" flow-run ls --limit 6
say "ok: every message filed exactly once by two Prefect workers"
