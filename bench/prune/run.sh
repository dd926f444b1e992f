#!/usr/bin/env bash
# Prune benchmark: two repositories on the same registry, each seeded with
# TAGS (2,000) timestamped tags over BRANCHES (5) branches plus -latest;
# one pruned to KEEP (10) per branch by the sequential curl loop
# (curl-prune.sh), the other by "swarmhook prune". Both are then checked
# for wrong deletions, and the ratio of the two times printed.
#
#   bench/prune/run.sh
#   REGISTRY=127.0.0.1:5000 TAGS=2000 BRANCHES=5 KEEP=10 CONCURRENCY=8 bench/prune/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REGISTRY=${REGISTRY:-127.0.0.1:5000}
TAGS=${TAGS:-2000} BRANCHES=${BRANCHES:-5} KEEP=${KEEP:-10} CONCURRENCY=${CONCURRENCY:-8}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/swarmhook" ./cmd/swarmhook
go build -o "$work/bench" ./bench/prune
ns=bench-prune-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
a=$ns/curl b=$ns/swarmhook

echo "seeding $a and $b with $TAGS tags each over $BRANCHES branches on $REGISTRY"
"$work/bench" seed -registry "$REGISTRY" -repo "$a" -state "$work/a.json" -tags "$TAGS" -branches "$BRANCHES" &
"$work/bench" seed -registry "$REGISTRY" -repo "$b" -state "$work/b.json" -tags "$TAGS" -branches "$BRANCHES" &
wait %1 && wait %2

cat >"$work/config.yaml" <<YAML
data_dir: $work/data
registry: {host: "$REGISTRY", insecure: true}
prune: {concurrency: $CONCURRENCY, retention: [{keep_last: $KEEP}]}
projects: [{name: bench, repo: "file:///nonexistent", images: [{name: "$b"}]}]
YAML

now() { date +%s.%N; }
t0=$(now)
bench/prune/curl-prune.sh "$REGISTRY" "$a" "$KEEP"
t1=$(now)
echo "curl loop took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
"$work/swarmhook" prune -config "$work/config.yaml" >"$work/report.json"
t2=$(now)
echo "swarmhook prune took $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s"
echo "swarmhook prune: $b: deleted $(grep -o '"deleted": [0-9]*' "$work/report.json" | grep -o '[0-9]*$')"

"$work/bench" verify -registry "$REGISTRY" -repo "$a" -state "$work/a.json" -keep "$KEEP"
"$work/bench" verify -registry "$REGISTRY" -repo "$b" -state "$work/b.json" -keep "$KEEP"
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
	printf "curl loop:       %.2f s\nswarmhook prune: %.2f s\nspeed-up:        %.1fx\n", b - a, c - b, (b - a) / (c - b) }'
