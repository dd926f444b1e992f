#!/usr/bin/env bash
# Install the distribution v3 registry binary (CNCF distribution, the
# successor of Debian's docker-registry 2.8) into a cache directory, once.
# Tests that need a registry with tag deletion (OCI distribution-spec 1.1)
# start it themselves on a free port; see internal/testenv/registryv3.go.
#
# Idempotent and fast when cached: if the binary is there and reports the
# wanted version, nothing is built. Prints the binary's path on stdout.
set -euo pipefail

VERSION=${SWARMHOOK_REGISTRY_V3_VERSION:-v3.1.2}
BIN_DIR=${SWARMHOOK_REGISTRY_V3_BIN:-/var/cache/swarmhook/bin}
BIN="$BIN_DIR/registry"
STAMP="$BIN_DIR/registry.version"

log() { printf '[registry-v3] %s\n' "$*" >&2; }

if [[ -x $BIN && $(cat "$STAMP" 2>/dev/null) == "$VERSION" ]]; then
	echo "$BIN"
	exit 0
fi
command -v go >/dev/null || { log "FATAL: go is not on PATH"; exit 1; }
mkdir -p "$BIN_DIR"
log "building github.com/distribution/distribution/v3/cmd/registry@$VERSION into $BIN_DIR"
# A throwaway GOPATH-independent build: module mode, no workspace of ours.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="$tmp" \
	go install "github.com/distribution/distribution/v3/cmd/registry@$VERSION" ) >&2 ||
	{ log "FATAL: go install of registry@$VERSION failed"; exit 1; }
mv "$tmp/registry" "$BIN"
printf '%s\n' "$VERSION" >"$STAMP"
log "installed $("$BIN" --version 2>/dev/null || echo "$BIN")"
echo "$BIN"
