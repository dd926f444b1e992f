#!/usr/bin/env bash
# The whole test suite, as CI runs it: bring up the real engine, registry
# and Swarm (scripts/infra.sh), then every Go test, unit and end-to-end.
# Extra arguments go to `go test` (e.g. -run TestPush).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/infra.sh

# End-to-end tests share one engine and Swarm: -p 2 keeps two packages
# at most in flight on a 2-core machine. Most of an end-to-end test is
# waiting for Swarm, so up to 4 of those that can share the Swarm run side
# by side (-parallel 4); the ones that stop a node, an engine or set the
# environment run alone first.
go test -count=1 -p 2 -parallel 4 -timeout 25m "$@" ./...

# Each webhook parser and the signature check are fuzzed for a bounded
# number of inputs (FUZZTIME, default 100000x each; see fuzz.sh).
if [[ -f scripts/fuzz.sh && $# -eq 0 ]]; then
	bash scripts/fuzz.sh
fi
