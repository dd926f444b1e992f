#!/usr/bin/env bash
# Builds benchmark (issue 21): a single push through swarmhook (BuildKit,
# per-branch work tree, restamped images) against the shell pipeline, side
# by side on the same app and Swarm, then rebuilds of an unchanged commit.
# Writes bench/RESULTS-builds.md through bench/run.sh. About 10 minutes on
# 2 busy cores. Tunables: RUNS (default 5), BUILD_SLEEP (default 3s),
# UNCHANGED (default 3).
#
#   bench/builds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/RESULTS-builds.md SKIP_BURST=1 BENCH_COMMAND=bench/builds.sh \
	exec bench/run.sh -skip-overlap -unchanged "${UNCHANGED:-3}"
