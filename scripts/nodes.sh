# shellcheck shell=bash
# The multi-node test Swarm, sourced by scripts/infra.sh (it uses infra.sh's
# log, die, spawn and DOCKER): the host's dockerd is the manager and two more
# dockerd instances, each in a network namespace of its own, join it as
# workers.
#
#   swh-br0      bridge on the host, 10.213.0.1/24 (the manager's Swarm
#                address and the registry's address for the workers)
#   swh-node2    netns + veth, 10.213.0.2, engine unix:///run/swh-node2/docker.sock
#   swh-node3    netns + veth, 10.213.0.3, engine unix:///run/swh-node3/docker.sock
#
# Each worker's dockerd has its own --data-root (/var/lib/swh-NAME), exec
# root, pid file (/run/swh-NAME/docker.pid, the PID tests kill), config file
# and log ($LOG_DIR/swh-NAME.log). internal/testenv names the same paths
# (testenv.Workers); keep the two in step.
#
# Every step checks first and acts only where something is missing, so a
# second run is a no-op, and a worker whose dockerd was killed is started
# again (it rejoins the Swarm as the same node from its data root).

NODES_BRIDGE=swh-br0
NODES_PREFIX=10.213.0
NODES_HOST_ADDR=$NODES_PREFIX.1
NODES_CIDR=$NODES_PREFIX.0/24
NODES_NAMES=(swh-node2 swh-node3)
# The registry's address for the workers: a second docker-registry process
# serving the same storage as the one on 127.0.0.1:5000.
NODES_REGISTRY_ADDR=$NODES_HOST_ADDR:5000
NODES_LABEL=swarmhook.test.node
DAEMON_JSON=/etc/docker/daemon.json

# node_addr NAME: swh-node2 -> 10.213.0.2
node_addr() { printf '%s.%s' "$NODES_PREFIX" "${1##*node}"; }
node_sock() { printf 'unix:///run/%s/docker.sock' "$1"; }

# ------------------------------------------------------------------ network --
# ensure_nodes_bridge runs before dockerd starts: the Swarm advertises the
# bridge address, so it must exist when the manager comes up.
ensure_nodes_bridge() {
	if ! ip link show "$NODES_BRIDGE" >/dev/null 2>&1; then
		log "creating bridge $NODES_BRIDGE ($NODES_HOST_ADDR/24)"
		ip link add "$NODES_BRIDGE" type bridge || die "ip link add $NODES_BRIDGE failed"
	fi
	ip -4 addr show dev "$NODES_BRIDGE" | grep -q "inet $NODES_HOST_ADDR/24" ||
		ip addr add "$NODES_HOST_ADDR/24" dev "$NODES_BRIDGE" || die "ip addr add $NODES_HOST_ADDR/24 dev $NODES_BRIDGE failed"
	ip link set "$NODES_BRIDGE" up || die "ip link set $NODES_BRIDGE up failed"
}

# ensure_nodes_forward lets the workers talk to each other (overlay
# networks' VXLAN): with br_netfilter loaded, bridged frames go through
# iptables' FORWARD chain, whose policy dockerd sets to DROP. DOCKER-USER is
# the chain dockerd keeps for rules of ours.
ensure_nodes_forward() {
	iptables -C DOCKER-USER -i "$NODES_BRIDGE" -o "$NODES_BRIDGE" -j ACCEPT 2>/dev/null ||
		iptables -I DOCKER-USER -i "$NODES_BRIDGE" -o "$NODES_BRIDGE" -j ACCEPT ||
		die "iptables: accepting forwarding on $NODES_BRIDGE failed"
}

ensure_node_netns() {
	local name=$1 addr veth="veth-$1"
	addr=$(node_addr "$name")
	[[ -e /var/run/netns/$name ]] || ip netns add "$name" || die "ip netns add $name failed"
	if ! ip link show "$veth" >/dev/null 2>&1; then
		log "creating veth $veth <-> $name:eth0 ($addr)"
		ip link add "$veth" type veth peer name eth0 netns "$name" || die "ip link add $veth failed"
	fi
	ip link set "$veth" master "$NODES_BRIDGE" up || die "attaching $veth to $NODES_BRIDGE failed"
	ip -n "$name" link set lo up
	ip -n "$name" -4 addr show dev eth0 | grep -q "inet $addr/24" ||
		ip -n "$name" addr add "$addr/24" dev eth0 || die "ip addr add $addr in $name failed"
	ip -n "$name" link set eth0 up || die "ip link set eth0 up in $name failed"
	ip -n "$name" route replace default via "$NODES_HOST_ADDR" || die "default route in $name failed"
}

# ------------------------------------------------------- registry for nodes --
# The host's dockerd must trust the bridge registry too (tests push to it):
# insecure-registries is reloadable, so it goes into daemon.json and a
# SIGHUP applies it without restarting the engine everyone shares. dockerd is
# started without --insecure-registry (infra.sh), so the key cannot conflict.
ensure_host_insecure_registry() {
	local want
	want=$(printf '{\n  "insecure-registries": ["%s"]\n}\n' "$NODES_CIDR")
	if [[ ! -f $DAEMON_JSON ]]; then
		mkdir -p "$(dirname "$DAEMON_JSON")"
		printf '%s' "$want" >"$DAEMON_JSON"
		log "wrote $DAEMON_JSON (insecure-registries: $NODES_CIDR)"
	elif ! grep -q "\"$NODES_CIDR\"" "$DAEMON_JSON"; then
		die "$DAEMON_JSON exists without \"$NODES_CIDR\" in insecure-registries; add it (see scripts/nodes.sh) and rerun"
	fi
}

host_trusts_bridge_registry() {
	"$DOCKER" info --format '{{range .RegistryConfig.InsecureRegistryCIDRs}}{{.}} {{end}}' 2>/dev/null | grep -qw "$NODES_CIDR"
}

reload_host_dockerd() {
	host_trusts_bridge_registry && return 0
	local pid
	pid=$(cat /var/run/docker.pid 2>/dev/null || true)
	[[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || die "no dockerd pid in /var/run/docker.pid to reload"
	log "reloading dockerd (pid $pid, SIGHUP) for insecure-registries $NODES_CIDR"
	kill -HUP "$pid"
	for _ in $(seq 1 20); do
		host_trusts_bridge_registry && return 0
		sleep 0.25
	done
	die "dockerd does not list $NODES_CIDR in its insecure registries after SIGHUP" "$LOG_DIR/dockerd.log"
}

# The shared registry keeps listening on 127.0.0.1:5000 only (it is not
# restarted, and is not exposed on eth0); a second docker-registry process
# serves the same storage directory on the bridge address. Distribution's
# filesystem driver commits blobs and links by rename and this config has no
# cache, so both see every push at once.
ensure_nodes_registry() {
	local conf="$CONF_DIR/registry-nodes.yml" pidfile="$RUN_DIR/registry-nodes.pid" pid
	sed "s|addr: $REGISTRY_ADDR|addr: $NODES_REGISTRY_ADDR|; s|service: swarmhook-test-registry|service: swarmhook-test-registry-nodes|" \
		"$REGISTRY_CONF" >"$conf.tmp"
	if cmp -s "$conf.tmp" "$conf"; then rm -f "$conf.tmp"; else mv "$conf.tmp" "$conf"; fi
	curl -sf -o /dev/null -m 5 "http://$NODES_REGISTRY_ADDR/v2/" && return 0
	pid=$(cat "$pidfile" 2>/dev/null || true)
	if [[ -n $pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registry ]]; then
		log "bridge registry pid $pid alive but not answering; restarting it"
		kill "$pid" || true
		sleep 1
	fi
	log "starting docker-registry on $NODES_REGISTRY_ADDR (config: $conf)"
	spawn "$LOG_DIR/registry-nodes.log" /usr/bin/docker-registry serve "$conf" >"$pidfile"
	local deadline=$((SECONDS + 30))
	until curl -sf -o /dev/null -m 5 "http://$NODES_REGISTRY_ADDR/v2/"; do
		kill -0 "$(cat "$pidfile")" 2>/dev/null || die "bridge docker-registry exited right after start" "$LOG_DIR/registry-nodes.log"
		((SECONDS < deadline)) || die "bridge registry did not answer on $NODES_REGISTRY_ADDR within 30s" "$LOG_DIR/registry-nodes.log"
		sleep 0.3
	done
}

# ------------------------------------------------------------ manager addr --
# A Swarm initialised before this file existed advertises 127.0.0.1, which a
# worker in another namespace cannot reach. No API changes a running
# manager's address, and re-initialising would drop every service on the
# engine others share. `swarm init --force-new-cluster` restarts the manager
# in-process from its current state (services, node IDs and join tokens
# kept; running tasks keep running) and moves the node's address (the data
# path workers use for overlay networks) to the bridge. The raft member
# address it keeps, though, and workers learn the managers from it and
# reconnect there: ensure_node_manager_route sends a worker's connections
# to that loopback address on to the bridge. A fresh machine (CI) initialises
# the Swarm on the bridge address and needs neither.
ensure_manager_addr() {
	local addr
	addr=$("$DOCKER" info --format '{{.Swarm.NodeAddr}}')
	[[ $addr == "$NODES_HOST_ADDR" ]] && return 0
	log "moving the Swarm manager's address from $addr to $NODES_HOST_ADDR (swarm init --force-new-cluster keeps its state)"
	"$DOCKER" swarm init --force-new-cluster --advertise-addr "$NODES_HOST_ADDR" --listen-addr 0.0.0.0:2377 \
		>"$LOG_DIR/swarm-readdr.log" 2>&1 || die "docker swarm init --force-new-cluster failed" "$LOG_DIR/swarm-readdr.log"
	local deadline=$((SECONDS + 60))
	until "$DOCKER" node ls >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "the manager does not answer 'docker node ls' after moving its address" "$LOG_DIR/dockerd.log"
		sleep 0.5
	done
}

# ensure_node_manager_route NAME: when the manager's raft address is on
# loopback (see ensure_manager_addr), NAT the worker's connections to it on
# to the manager's bridge address.
ensure_node_manager_route() {
	local name=$1 mgr port addr ns
	mgr=$("$DOCKER" node inspect self --format '{{.ManagerStatus.Addr}}')
	[[ $mgr == 127.* ]] || return 0
	port=${mgr##*:}
	addr=$(node_addr "$name")
	ns=(nsenter --net="/var/run/netns/$name")
	"${ns[@]}" sysctl -qw net.ipv4.conf.all.route_localnet=1 || die "$name: sysctl route_localnet failed"
	"${ns[@]}" iptables -t nat -C OUTPUT -d "${mgr%:*}" -p tcp --dport "$port" -j DNAT --to-destination "$NODES_HOST_ADDR:$port" 2>/dev/null ||
		"${ns[@]}" iptables -t nat -I OUTPUT -d "${mgr%:*}" -p tcp --dport "$port" -j DNAT --to-destination "$NODES_HOST_ADDR:$port" ||
		die "$name: iptables DNAT to the manager failed"
	"${ns[@]}" iptables -t nat -C POSTROUTING -s 127.0.0.0/8 -d "$NODES_HOST_ADDR" -j SNAT --to-source "$addr" 2>/dev/null ||
		"${ns[@]}" iptables -t nat -I POSTROUTING -s 127.0.0.0/8 -d "$NODES_HOST_ADDR" -j SNAT --to-source "$addr" ||
		die "$name: iptables SNAT to the manager failed"
}

# ------------------------------------------------------------------ workers --
node_docker() {
	local name=$1
	shift
	timeout 20 "$DOCKER" -H "$(node_sock "$name")" "$@"
}

start_node_dockerd() {
	local name=$1 addr run="/run/$1" pidfile="/run/$1/docker.pid" pid driver
	addr=$(node_addr "$name")
	mkdir -p "$run" "/var/lib/$name"
	pid=$(cat "$pidfile" 2>/dev/null || true)
	if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
		log "$name: dockerd (pid $pid) is running but not answering yet; waiting for it"
	else
		# A killed dockerd leaves its pid file behind and the next start refuses.
		rm -f "$pidfile"
		# Its own config file: the host's daemon.json sets insecure-registries
		# too, and a key set both by flag and file stops dockerd.
		[[ -s $CONF_DIR/$name.json ]] || printf '{}\n' >"$CONF_DIR/$name.json"
		driver=$("$DOCKER" info --format '{{.Driver}}')
		[[ $driver == overlay2 || $driver == vfs ]] || driver=vfs
		log "$name: starting dockerd ($addr, storage $driver, log $LOG_DIR/$name.log)"
		printf '\n==== %s: dockerd %s\n' "$(date -Is)" "$name" >>"$LOG_DIR/$name.log"
		# nsenter, not `ip netns exec`: that remounts /sys and hides the
		# cgroups. unshare --uts gives the node its own hostname.
		spawn "$LOG_DIR/$name.log" nsenter --net="/var/run/netns/$name" \
			unshare --uts sh -c 'hostname "$0" && exec "$@"' "$name" \
			/usr/sbin/dockerd \
			--config-file "$CONF_DIR/$name.json" \
			--data-root "/var/lib/$name" \
			--exec-root "$run/exec" \
			--pidfile "$pidfile" \
			-H "$(node_sock "$name")" \
			--storage-driver "$driver" \
			--insecure-registry "$NODES_CIDR" >/dev/null
	fi
	local deadline=$((SECONDS + DOCKERD_WAIT))
	until node_docker "$name" info >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "$name: dockerd does not answer on $(node_sock "$name") within ${DOCKERD_WAIT}s" "$LOG_DIR/$name.log"
		sleep 0.5
	done
}

ensure_node() {
	local name=$1 addr state token id joined=
	addr=$(node_addr "$name")
	ensure_node_netns "$name"
	ensure_node_manager_route "$name"
	node_docker "$name" info >/dev/null 2>&1 || start_node_dockerd "$name"
	state=$(node_docker "$name" info --format '{{.Swarm.LocalNodeState}}')
	case $state in
	active | pending) ;;
	inactive)
		token=$("$DOCKER" swarm join-token -q worker)
		log "$name: joining the Swarm at $NODES_HOST_ADDR:2377 as a worker"
		node_docker "$name" swarm join --token "$token" --advertise-addr "$addr" --listen-addr "$addr:2377" \
			"$NODES_HOST_ADDR:2377" >"$LOG_DIR/$name-join.log" 2>&1 || die "$name: docker swarm join failed" "$LOG_DIR/$name-join.log"
		joined=1
		;;
	*) die "$name: Swarm state '$state'; remove /var/lib/$name (after killing its dockerd) and rerun" "$LOG_DIR/$name.log" ;;
	esac
	id=$(node_docker "$name" info --format '{{.Swarm.NodeID}}')
	# Both sides: the manager may still list a just-killed worker as ready.
	local deadline=$((SECONDS + 60))
	until [[ $(node_docker "$name" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null) == active &&
		$("$DOCKER" node inspect --format '{{.Status.State}}' "$id" 2>/dev/null) == ready ]]; do
		((SECONDS < deadline)) || die "$name: node $id is not ready in the Swarm after 60s" "$LOG_DIR/$name.log"
		sleep 0.5
	done
	[[ $("$DOCKER" node inspect --format "{{index .Spec.Labels \"$NODES_LABEL\"}}" "$id") == worker ]] ||
		"$DOCKER" node update --label-add "$NODES_LABEL=worker" "$id" >/dev/null || die "$name: labelling node $id failed"
	# A worker whose data root was wiped joins as a new node; drop the old
	# entry of the same name so the Swarm lists three nodes, not more. Just
	# after a join any other entry of the name is the old one, though the
	# manager may not have noticed yet that it is down.
	local old
	for old in $("$DOCKER" node ls --filter "name=$name" --format '{{.ID}} {{.Hostname}} {{.Status}}' |
		awk -v n="$name" -v id="$id" -v joined="$joined" '$2 == n && $1 != id && ($3 == "Down" || joined != "") {print $1}'); do
		log "$name: removing its old node entry $old"
		"$DOCKER" node rm --force "$old" >/dev/null || true
	done
}

# ensure_nodes brings up everything after the manager and registry are up.
ensure_nodes() {
	reload_host_dockerd
	ensure_nodes_forward
	ensure_nodes_registry
	ensure_manager_addr
	local name
	for name in "${NODES_NAMES[@]}"; do
		ensure_node "$name"
	done
}
