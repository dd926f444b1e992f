#!/usr/bin/env bash
# The alternative the prune benchmark compares against: the sequential
# list-resolve-delete loop with curl that a cron job would run. It keeps
# the newest KEEP <branch>-<timestamp> tags of each branch, never touches
# -latest or other tags, skips any tag whose digest a kept tag shares, and
# deletes the rest by digest (the only delete distribution 2.8 offers).
#
#   bench/prune/curl-prune.sh REGISTRY REPO [KEEP]
set -euo pipefail
reg=$1 repo=$2 keep=${3:-10}
base="http://$reg/v2/$repo"
accept='Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'

# List.
mapfile -t tags < <(curl -fsS "$base/tags/list" | sed 's/.*"tags":\[//; s/\].*//' | tr -d '"' | tr ',' '\n' | grep -v '^$')

# Resolve every tag's digest.
declare -A digest
for t in "${tags[@]}"; do
	digest[$t]=$(curl -fsS -o /dev/null -I -H "$accept" -w '%header{docker-content-digest}' "$base/manifests/$t")
done

# Plan: per branch, newest first; keep KEEP; everything else outside the
# scheme or -latest is kept too.
declare -A kept_digest
candidates=()
mapfile -t stamped < <(printf '%s\n' "${tags[@]}" | grep -E -- '-[0-9]{14}$' | sed -E 's/^(.*)-([0-9]{14})$/\1 \2 &/' | sort -k1,1 -k2,2r)
last_branch= n=0
for line in "${stamped[@]}"; do
	read -r branch _ t <<<"$line"
	[[ $branch == "$last_branch" ]] || { last_branch=$branch; n=0; }
	n=$((n + 1))
	if ((n <= keep)); then kept_digest[${digest[$t]}]=1; else candidates+=("$t"); fi
done
for t in "${tags[@]}"; do
	[[ $t =~ -[0-9]{14}$ ]] || kept_digest[${digest[$t]}]=1
done

# Delete by digest, one at a time.
deleted=0
for t in "${candidates[@]}"; do
	d=${digest[$t]}
	[[ -n $d && -z ${kept_digest[$d]:-} ]] || continue
	curl -fsS -X DELETE -o /dev/null "$base/manifests/$d"
	deleted=$((deleted + 1))
done
echo "curl-prune: $repo: ${#tags[@]} tags, deleted $deleted"
