#!/usr/bin/env bash
# Intake benchmark: starts swarmhook on loopback with one project, then
# runs the load generator as a second process against it. Tunables: N,
# RATE, CONNS, BRANCHES, WARMUP, JOBS, KEEPALIVE, RAW; SH_PROCS and
# GEN_PROCS set GOMAXPROCS for swarmhook and the generator; SWARMHOOK=path
# runs that build; BUILD_TAGS=pprof with PPROF_ADDR=127.0.0.1:6061 serves
# pprof from swarmhook while it runs; SH_LOG=file keeps swarmhook's
# stderr there.
#
#   bench/intake/run.sh
#   N=20000 RATE=2000 bench/intake/run.sh
#   JOBS=fail bench/intake/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	if [ -n "${stall_pid:-}" ]; then kill "$stall_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# SWARMHOOK=path runs that binary instead of building this tree: to
# compare two builds on the same machine, one run after the other.
if [ -n "${SWARMHOOK:-}" ]; then
	cp "$SWARMHOOK" "$work/swarmhook"
else
	go build ${BUILD_TAGS:+-tags "$BUILD_TAGS"} -o "$work/swarmhook" ./cmd/swarmhook
fi
go build -o "$work/loadgen" ./bench/intake
# JOBS=stall (default): the repository server accepts and never answers,
# like builds in progress: both workers stay busy for the whole run and
# pushes join the builds waiting behind them, as in a real burst.
# JOBS=fail: the repository URL is a closed port, every job fails in its
# fetch within milliseconds and the next starts at once, so jobs churn
# all run long beside intake (a worst case, not a real one).
repo=http://127.0.0.1:9/no-such-repo.git
if [ "${JOBS:-stall}" = stall ]; then
	stall_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128); time.sleep(3600)' "$stall_port" &
	stall_pid=$!
	repo=http://127.0.0.1:$stall_port/stalled.git
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Secrets travel in the environment: swarmhook expands ${VAR} in its
# config, the generator reads them itself.
BENCH_SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
BENCH_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_SECRET BENCH_TOKEN
cat >"$work/config.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $work/data
tokens: [{name: bench, token: "\${BENCH_TOKEN}", scopes: [read]}]
registry: {host: "127.0.0.1:5000", insecure: true}
projects:
  - name: bench
    repo: $repo
    secret: "\${BENCH_SECRET}"
    images: [{name: bench/app}]
YAML
env ${SH_PROCS:+GOMAXPROCS=$SH_PROCS} "$work/swarmhook" serve -config "$work/config.yaml" -log-level "${LOG_LEVEL:-info}" 2>"${SH_LOG:-$work/swarmhook.log}" &
pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
echo "swarmhook $(git rev-parse --short HEAD) on 127.0.0.1:$port, $(nproc) cores"
# The generator allocates little once its deliveries are prepared; its
# collector is off so that its pauses do not count as swarmhook latency.
env ${GEN_PROCS:+GOMAXPROCS=$GEN_PROCS} GOGC=off GOMEMLIMIT=off "$work/loadgen" -url "http://127.0.0.1:$port" -project bench \
	-n "${N:-50000}" -rate "${RATE:-5000}" -warmup "${WARMUP:-2s}" -c "${CONNS:-16}" -branches "${BRANCHES:-8}" -server-pid "$pid" -keepalive="${KEEPALIVE:-true}" -raw="${RAW:-true}" ${GEN_PROFILE:+-cpuprofile "$GEN_PROFILE"}
# CPU seconds swarmhook used over the run (and the job checks after it),
# and how busy the shared machine was: other work on the same cores
# shows here.
echo "swarmhook cpu: $(ps -o times= -p "$pid")s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# Bytes swarmhook had written to disk by then (the WAL's frames, once a
# checkpoint syncs them, and the database's pages).
if [ -r "/proc/$pid/io" ]; then
	echo "swarmhook disk writes: $(awk '/^write_bytes/ {printf "%.1f MiB", $2/1048576}' "/proc/$pid/io")"
fi
