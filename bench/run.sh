#!/usr/bin/env bash
# Pipeline benchmark: swarmhook against the shell pipeline it replaces
# (bench/pipeline/reference.sh), on the real engine, registry and Swarm
# that scripts/infra.sh brings up. Writes bench/RESULTS.md. Takes about
# 40 minutes on 2 busy cores. Tunables: RUNS (default 5), BUILD_SLEEP (default 3s),
# BURST (default 10), SKIP_BURST=1, OUT (default bench/RESULTS.md); further
# arguments go to the driver (bench/builds.sh passes some).
#
#   bench/run.sh
#   RUNS=3 SKIP_BURST=1 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1 || ! curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
	bash scripts/infra.sh
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$work/swarmhook" ./cmd/swarmhook
CGO_ENABLED=0 go build -trimpath -o "$work/app" ./internal/testenv/testapp
go build -o "$work/pipeline" ./bench/pipeline
"$work/pipeline" -swarmhook "$work/swarmhook" -app "$work/app" \
	-reference bench/pipeline/reference.sh -out "${OUT:-bench/RESULTS.md}" \
	-runs "${RUNS:-5}" -build-sleep "${BUILD_SLEEP:-3s}" -burst "${BURST:-10}" \
	${SKIP_BURST:+-skip-burst} "$@"
