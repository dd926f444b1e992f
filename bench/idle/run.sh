#!/usr/bin/env bash
# Idle-memory benchmark: swarmhook's resident memory after start-up and a
# few API reads, with JOBS finished jobs (and their logs) in its history,
# against the same binary with an empty history in the same run.
#
#   bench/idle/run.sh
#   JOBS=5000 WAIT=30 bench/idle/run.sh
#
# Extra environment reaches swarmhook (e.g. GOGC=off to see the
# difference the collector makes).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

jobs=${JOBS:-1000}
wait_s=${WAIT:-10}
# Built as the Dockerfile builds the shipped binary.
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/swarmhook" ./cmd/swarmhook
go build -o "$work/seed" ./bench/idle
BENCH_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_TOKEN

# measure NAME JOBS: seed a fresh data dir, start swarmhook on it, read
# the job list, wait, and print resident memory (VmRSS; anon is heap and
# SQLite, file the binary's pages) and its peak (VmHWM) in MiB.
measure() {
	local name=$1 n=$2 data="$work/data-$1" port
	mkdir -p "$data"
	if [ "$n" -gt 0 ]; then "$work/seed" -data "$data" -jobs "$n" >/dev/null; fi
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$work/$name.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $data
tokens: [{name: bench, token: "\${BENCH_TOKEN}", scopes: [read]}]
registry: {host: "127.0.0.1:5000", insecure: true}
projects:
  - name: bench
    repo: http://127.0.0.1:9/no-such-repo.git
    allow_unsigned: true
    images: [{name: bench/api}, {name: bench/web}]
    deploy: [{branch: main, services: [bench_api, bench_web]}]
YAML
	"$work/swarmhook" serve -config "$work/$name.yaml" -log-level warn 2>"$work/$name.log" &
	pid=$!
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	local auth="Authorization: Bearer $BENCH_TOKEN" base="http://127.0.0.1:$port"
	for q in "" "?limit=500" "?limit=500&before=600" "?project=bench&status=failed" "?branch=main&limit=200"; do
		curl -fsS -H "$auth" "$base/api/jobs$q" -o /dev/null
	done
	if [ "$n" -gt 0 ]; then curl -fsS -H "$auth" "$base/api/jobs/$n/log" -o /dev/null; fi
	curl -fsS "$base/metrics" -o /dev/null
	sleep "$wait_s"
	awk -v name="$name" -v n="$n" '/^VmRSS/ {rss=$2} /^VmHWM/ {hwm=$2} /^RssAnon/ {anon=$2} /^RssFile/ {file=$2}
		END {printf "%-8s %5d jobs  VmRSS %5.1f MiB (anon %5.1f, file %5.1f)  VmHWM %5.1f MiB\n", name, n, rss/1024, anon/1024, file/1024, hwm/1024}' "/proc/$pid/status"
	grep -o "VmRSS:.*" "/proc/$pid/status" | awk '{print $2}' >"$work/$name.rss"
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

echo "swarmhook $(git rev-parse --short HEAD), $(nproc) cores, ${wait_s}s idle after the reads"
measure empty 0
measure history "$jobs"
awk -v a="$(cat "$work/history.rss")" -v b="$(cat "$work/empty.rss")" 'BEGIN {printf "history/empty RSS ratio: %.2f\n", a/b}'
