#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a bounded time each, one
# after another, so CI can call it as it is. A crash leaves its input in
# the package's testdata/fuzz/ and fails the script.
#
#   scripts/fuzz.sh                 # 100,000 inputs per target (~10s each here)
#   FUZZTIME=1m scripts/fuzz.sh     # longer, by hand
#
# The default is a count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" failure,
# with no crashing input, when the time runs out while a worker is busy
# (golang/go#75804, fixed in Go 1.27). A count has no deadline to race.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-100000x}"

# Only packages whose tests declare a fuzz target, so nothing else is
# compiled for listing.
mapfile -t dirs < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u)
if [ "${#dirs[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
ran=0
for dir in "${dirs[@]}"; do
	for target in $(go test -list '^Fuzz' "$dir" | grep '^Fuzz'); do
		echo "=== fuzz $dir $target for $fuzztime"
		go test "$dir" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"
		ran=$((ran + 1))
	done
done
echo "fuzz.sh: $ran fuzz targets ran for $fuzztime each without a failure"
