#!/usr/bin/env bash
# Bring up the local infrastructure swarmhook's tests and demo need:
#   dockerd (Debian docker.io 20.10), a plain-HTTP registry on 127.0.0.1:5000,
#   a Swarm of three nodes (this engine as manager, two workers in network
#   namespaces: scripts/nodes.sh), and the offline base image
#   swarmhook-test/busybox:latest.
#
# Idempotent: every step first checks whether its piece already works and
# only acts where something is missing, so a second run is a fast no-op.
# Nothing is ever silently skipped: a piece that cannot be brought up is a
# hard failure (non-zero exit, clear message, log tail), with or without CI.
#
# No systemd here, so daemons are started detached (setsid nohup) with logs
# under $LOG_DIR. No image can be pulled from public registries, so the base
# image is built locally from Debian's static busybox.
set -euo pipefail

LOG_DIR=${SWARMHOOK_INFRA_LOG_DIR:-/var/log/swarmhook-infra}
STATE_DIR=${SWARMHOOK_INFRA_STATE_DIR:-/var/lib/swarmhook-infra}
CONF_DIR=${SWARMHOOK_INFRA_CONF_DIR:-/etc/swarmhook-infra}
RUN_DIR=/run/swarmhook-infra

REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_URL="http://${REGISTRY_ADDR}"
REGISTRY_CONF="$CONF_DIR/registry.yml"
REGISTRY_DATA="$STATE_DIR/registry"

BASE_IMAGE=swarmhook-test/busybox:latest
# Bump when the rootfs recipe below changes, so existing images get rebuilt.
BASE_IMAGE_REV=1

# Optional override (e.g. vfs); empty means "let dockerd pick, fall back to vfs".
STORAGE_DRIVER=${SWARMHOOK_STORAGE_DRIVER:-}
DOCKERD_WAIT=${SWARMHOOK_DOCKERD_WAIT:-60}

# Prefer Debian's 20.10 CLI: it matches the engine. /usr/local/bin/docker
# (Docker 28 CLI) also works via API negotiation but is not guaranteed to
# exist on a fresh machine.
if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi

START_TS=$(date +%s.%N)
CI=${CI:-}

log() { printf '[infra] %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE]: always fatal; the log tail makes CI failures debuggable.
die() {
	printf '[infra] FATAL: %s\n' "$1" >&2
	if [[ -n ${2:-} && -f $2 ]]; then
		printf '[infra] --- last lines of %s ---\n' "$2" >&2
		tail -n "${SWARMHOOK_INFRA_LOG_TAIL:-40}" "$2" >&2 || true
	fi
	[[ $CI == true ]] && printf '[infra] (CI=true: infrastructure failures are fatal)\n' >&2
	exit 1
}

[[ $(id -u) == 0 ]] || die "must run as root (installs packages, starts dockerd)"
mkdir -p "$LOG_DIR" "$STATE_DIR" "$CONF_DIR" "$RUN_DIR"
TMP_ROOTFS=
trap '[[ -z $TMP_ROOTFS ]] || rm -rf "$TMP_ROOTFS"' EXIT

# Serialise concurrent runs (e.g. two test invocations) so they don't both
# start a dockerd or registry.
exec 9>"$RUN_DIR/infra.lock"
flock -w 180 9 || die "another infra.sh run holds $RUN_DIR/infra.lock for >180s"

# ---------------------------------------------------------------- packages --
ensure_packages() {
	local pkgs=(docker.io docker-registry busybox-static git ca-certificates curl chromium iproute2 util-linux)
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0

	log "installing missing packages: ${missing[*]}"
	# Block maintainer scripts from starting daemons: docker-registry's init
	# script would grab :5000 with Debian's htpasswd-auth config, and we want
	# to start dockerd ourselves with known flags/logs.
	local policy=/usr/sbin/policy-rc.d own_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	local rc=0
	{ apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } \
		>"$LOG_DIR/apt.log" 2>&1 || rc=$?
	[[ -n $own_policy ]] && rm -f "$policy"
	((rc == 0)) || die "apt-get install ${missing[*]} failed (rc=$rc)" "$LOG_DIR/apt.log"
}

# spawn LOGFILE CMD [ARGS...]: start CMD as a detached daemon, print its pid.
# setsid: own session, so it outlives this script and the CI job's process
# group. All inherited fds above 2 are closed first: otherwise the daemon
# keeps our lock fd (blocking every later run) and any CI pipe open forever.
spawn() {
	local logf=$1
	shift
	(
		cd /
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
		done
		exec setsid nohup "$@" >>"$logf" 2>&1 </dev/null
	) &
	echo $!
}

# ------------------------------------------------------------------ dockerd --
docker_ok() { timeout 10 "$DOCKER" info >/dev/null 2>&1; }

# start_dockerd [extra dockerd args...]; returns non-zero if it never answers.
start_dockerd() {
	local pidfile=/var/run/docker.pid pid
	# A killed dockerd leaves its pid file behind and the next start refuses.
	if [[ -f $pidfile ]]; then
		pid=$(cat "$pidfile" 2>/dev/null || true)
		# Check the name too: after a reboot/kill the pid may belong to something else.
		if [[ -n $pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
			log "dockerd (pid $pid) is running but not answering yet; waiting for it"
			wait_dockerd "$pid" keep && return 0
			die "dockerd pid $pid is alive but does not answer 'docker info' after ${DOCKERD_WAIT}s; stop it and rerun" "$LOG_DIR/dockerd.log"
		fi
		log "removing stale $pidfile (pid ${pid:-?} is not a running dockerd)"
		rm -f "$pidfile"
	fi
	log "starting dockerd $* (log: $LOG_DIR/dockerd.log)"
	printf '\n==== %s: dockerd %s\n' "$(date -Is)" "$*" >>"$LOG_DIR/dockerd.log"
	spawn "$LOG_DIR/dockerd.log" /usr/sbin/dockerd "$@" >/dev/null
	for _ in $(seq 1 20); do # wait for it to write its pid file
		[[ -s $pidfile ]] && break
		sleep 0.25
	done
	wait_dockerd "$(cat "$pidfile" 2>/dev/null || true)" kill
}

# wait_dockerd PID keep|kill: poll 'docker info' until it answers, PID dies,
# or timeout. "kill" stops a dockerd we started ourselves that never answered
# (so the vfs fallback can start cleanly); "keep" leaves a foreign one alone.
wait_dockerd() {
	local pid=$1 on_timeout=$2 deadline=$((SECONDS + DOCKERD_WAIT))
	while ((SECONDS < deadline)); do
		docker_ok && return 0
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			log "dockerd (pid $pid) exited"
			return 1
		fi
		[[ -z $pid && ! -s /var/run/docker.pid ]] && { log "dockerd did not start"; return 1; }
		[[ -z $pid ]] && pid=$(cat /var/run/docker.pid 2>/dev/null || true)
		sleep 0.5
	done
	log "dockerd did not answer within ${DOCKERD_WAIT}s"
	if [[ $on_timeout == kill && -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		rm -f /var/run/docker.pid
	fi
	return 1
}

ensure_dockerd() {
	if docker_ok; then
		# dockerd only creates docker0 at startup. If it vanished since (e.g. a
		# second dockerd started with --bridge=none deletes it), every
		# container start fails with "could not find bridge docker0".
		local br
		br=$("$DOCKER" network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
		[[ -z $br || -e /sys/class/net/$br ]] ||
			die "dockerd is running but its '$br' bridge is gone; restart dockerd (kill \$(cat /var/run/docker.pid)) and rerun"
		return 0
	fi
	if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != unix:///var/run/docker.sock ]]; then
		die "DOCKER_HOST=$DOCKER_HOST does not answer; refusing to start a local dockerd for it"
	fi
	if [[ -n $STORAGE_DRIVER ]]; then
		start_dockerd --storage-driver="$STORAGE_DRIVER" ||
			die "dockerd failed to start with --storage-driver=$STORAGE_DRIVER" "$LOG_DIR/dockerd.log"
		return 0
	fi
	# Default first (overlay2 works in this sandbox); vfs is the slow but
	# always-working fallback for hosts without usable overlayfs.
	if start_dockerd; then
		log "dockerd is up; storage driver: $("$DOCKER" info --format '{{.Driver}}')"
		return 0
	fi
	log "dockerd failed with its default storage driver; retrying with --storage-driver=vfs"
	start_dockerd --storage-driver=vfs ||
		die "dockerd failed to start (default driver and vfs)" "$LOG_DIR/dockerd.log"
	log "dockerd is up; storage driver: $("$DOCKER" info --format '{{.Driver}}')"
}

# ----------------------------------------------------------------- registry --
registry_status() { # HTTP status of GET /v2/ ("000" = nothing listening)
	curl -s -o /dev/null -m 5 -w '%{http_code}' "$REGISTRY_URL/v2/" 2>/dev/null || true
}

write_registry_config() {
	mkdir -p "$REGISTRY_DATA"
	local tmp="$REGISTRY_CONF.tmp"
	# No auth (tests talk plain HTTP to 127.0.0.1, which dockerd trusts as
	# insecure by default). No blobdescriptor cache on purpose: the in-memory
	# cache keeps deleted blobs "known", which breaks delete-then-re-push tests.
	cat >"$tmp" <<EOF
# Managed by swarmhook scripts/infra.sh; rewritten on every run.
version: 0.1
log:
  level: info
  fields:
    service: swarmhook-test-registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DATA
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
	if cmp -s "$tmp" "$REGISTRY_CONF"; then rm -f "$tmp"; else mv "$tmp" "$REGISTRY_CONF"; fi
}

ensure_registry() {
	write_registry_config
	local st
	st=$(registry_status)
	if [[ $st != 200 ]]; then
		[[ $st == 000 ]] || die "something else answers on $REGISTRY_URL/v2/ with HTTP $st (Debian's auth-enabled docker-registry service?); stop it and rerun"
		local pidfile="$RUN_DIR/registry.pid" pid
		pid=$(cat "$pidfile" 2>/dev/null || true)
		# Only ever stop the registry we started ourselves (pid file + name match).
		if [[ -n $pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registry ]]; then
			log "registry pid $pid alive but not answering; restarting it"
			kill "$pid" || true
			sleep 1
		fi
		log "starting docker-registry (config: $REGISTRY_CONF, log: $LOG_DIR/registry.log)"
		printf '\n==== %s: docker-registry serve %s\n' "$(date -Is)" "$REGISTRY_CONF" >>"$LOG_DIR/registry.log"
		spawn "$LOG_DIR/registry.log" /usr/bin/docker-registry serve "$REGISTRY_CONF" >"$pidfile"
		local deadline=$((SECONDS + 30))
		until [[ $(registry_status) == 200 ]]; do
			pid=$(cat "$pidfile")
			kill -0 "$pid" 2>/dev/null || die "docker-registry exited right after start" "$LOG_DIR/registry.log"
			((SECONDS < deadline)) || die "registry did not answer on $REGISTRY_URL/v2/ within 30s" "$LOG_DIR/registry.log"
			sleep 0.3
		done
	fi
	# Prove deletes are enabled on whatever answers: a DELETE of an unknown
	# manifest is 404 when enabled and 405 (UNSUPPORTED) when disabled.
	st=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X DELETE \
		"$REGISTRY_URL/v2/swarmhook-infra-probe/manifests/sha256:$(printf '0%.0s' {1..64})" || true)
	[[ $st == 404 ]] || die "registry at $REGISTRY_URL answered DELETE with HTTP $st (expected 404): storage.delete not enabled? Stop it so infra.sh can start its own" "$LOG_DIR/registry.log"
}

# -------------------------------------------------------------- registry v3 --
# Tests of tag deletion also need a distribution v3 registry (which deletes
# tags, unlike 2.8). They start it themselves on a free port; here it is
# only built once into a cache. Fast when cached.
REGISTRY_V3_BIN=
ensure_registry_v3() {
	local script
	script="$(dirname "${BASH_SOURCE[0]}")/registry-v3.sh"
	REGISTRY_V3_BIN=$("$script" 2>"$LOG_DIR/registry-v3.log") ||
		die "building the distribution v3 registry failed" "$LOG_DIR/registry-v3.log"
}

# -------------------------------------------------------------------- swarm --
ensure_swarm() {
	local state ctrl
	read -r state ctrl < <("$DOCKER" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
	case "$state" in
	active) [[ $ctrl == true ]] || die "node is in a swarm but not a manager; run 'docker swarm leave --force' and rerun" ;;
	inactive)
		# Advertised on the bridge of scripts/nodes.sh, where workers reach it.
		log "initialising the swarm (advertise $NODES_HOST_ADDR)"
		"$DOCKER" swarm init --advertise-addr "$NODES_HOST_ADDR" >"$LOG_DIR/swarm-init.log" 2>&1 ||
			die "docker swarm init failed" "$LOG_DIR/swarm-init.log"
		;;
	*) die "swarm is in state '$state'; fix it (e.g. 'docker swarm leave --force') and rerun" ;;
	esac
	"$DOCKER" node ls >/dev/null 2>"$LOG_DIR/node-ls.log" || die "'docker node ls' failed" "$LOG_DIR/node-ls.log"
}

# --------------------------------------------------------------- base image --
build_base_image() {
	local root
	root=$(mktemp -d)
	TMP_ROOTFS=$root # removed by the EXIT trap even if we die half-way
	# Layout per 'busybox --list-full' (bin, sbin, usr/bin, usr/sbin), all
	# applets symlinked to the one static binary: a few MB, no network needed.
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,proc,sys,dev}
	chmod 1777 "$root/tmp" "$root/var/tmp"
	install -m 0755 /bin/busybox "$root/bin/busybox"
	local applet
	while read -r applet; do
		[[ -e $root/$applet || -L $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
	done < <(/bin/busybox --list-full)
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	tar --numeric-owner -C "$root" -cf - . | "$DOCKER" import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["sh"]' \
		--change "LABEL org.swarmhook.infra.rev=$BASE_IMAGE_REV" \
		--message "swarmhook infra.sh: Debian busybox-static $(dpkg-query -W -f='${Version}' busybox-static)" \
		- "$BASE_IMAGE" >"$LOG_DIR/base-image.log" 2>&1 || die "docker import of $BASE_IMAGE failed" "$LOG_DIR/base-image.log"
	rm -rf "$root"
}

ensure_base_image() {
	local rev
	rev=$("$DOCKER" image inspect --format '{{index .Config.Labels "org.swarmhook.infra.rev"}}' "$BASE_IMAGE" 2>/dev/null || true)
	if [[ $rev != "$BASE_IMAGE_REV" ]]; then
		log "building $BASE_IMAGE from /bin/busybox (rev $BASE_IMAGE_REV, found '${rev:-none}')"
		build_base_image
	fi
	# Proves the whole runtime path: storage driver, runc, cgroups, bridge netns.
	local out
	out=$("$DOCKER" run --rm "$BASE_IMAGE" sh -c 'echo ok' 2>&1) ||
		die "'docker run --rm $BASE_IMAGE sh -c \"echo ok\"' failed: $out" "$LOG_DIR/dockerd.log"
	[[ $out == ok ]] || die "test container printed '$out' instead of 'ok'"
}

# -------------------------------------------------------------- worker nodes --
# shellcheck source=scripts/nodes.sh
source "$(dirname "${BASH_SOURCE[0]}")/nodes.sh"

# --------------------------------------------------------------------- main --
ensure_packages
ensure_nodes_bridge            # before dockerd: the Swarm advertises its address
ensure_host_insecure_registry  # before dockerd starts, so it reads it
ensure_dockerd
ensure_registry
ensure_registry_v3
ensure_swarm
ensure_base_image
ensure_nodes

read -r engine api < <("$DOCKER" version --format '{{.Server.Version}} {{.Server.APIVersion}}')
driver=$("$DOCKER" info --format '{{.Driver}}')
read -r sw_state sw_node < <("$DOCKER" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}')
elapsed=$(awk -v s="$START_TS" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
[[ $driver != vfs ]] || log "WARNING: storage driver is vfs (no overlayfs here): image builds and container starts are slow"
cat <<EOF
[infra] ready in ${elapsed}s
  engine:   $engine (API $api)
  storage:  $driver
  registry: $REGISTRY_URL (data: $REGISTRY_DATA)
  v3 bin:   $REGISTRY_V3_BIN
  swarm:    $sw_state manager, node $sw_node ($NODES_HOST_ADDR:2377)
  workers:  ${NODES_NAMES[*]} (engines $(for n in "${NODES_NAMES[@]}"; do printf '%s ' "$(node_sock "$n")"; done)), registry for them $NODES_REGISTRY_ADDR
  image:    $BASE_IMAGE
  logs:     $LOG_DIR
EOF
