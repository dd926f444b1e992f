#!/usr/bin/env bash
# A push becomes a rolling update, on this machine: brings up engine,
# registry and Swarm (scripts/infra.sh), builds swarmhook, makes a demo Git
# repository with a tiny web app, runs it as the Swarm service demo_web on
# http://127.0.0.1:8081, starts swarmhook, pushes a change and sends the
# signed GitHub webhook. Watch the job log scroll, then the new version
# answer. swarmhook keeps running; the script prints its PID.
#
# scripts/demo.sh stop   stops the swarmhook the demo started, and nothing
#                        else: the PID in $DEMO_DIR/swarmhook.pid, only while
#                        that process is still swarmhook serving the demo's
#                        config.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=${DEMO_DIR:-/tmp/swarmhook-demo}
port=${DEMO_PORT:-8090}
pidfile=$demo/swarmhook.pid

# is_demo_swarmhook PID: is PID a swarmhook serving the demo's config? A
# PID from an old pid file may belong to any process by now.
is_demo_swarmhook() {
	local args=()
	[[ -r /proc/$1/cmdline ]] || return 1
	mapfile -d '' -t args <"/proc/$1/cmdline" 2>/dev/null || return 1
	[[ ${#args[@]} -ge 4 && ${args[0]##*/} == swarmhook && ${args[1]} == serve &&
		${args[2]} == -config && ${args[3]} == "$demo/config.yaml" ]]
}

# stop_demo stops the swarmhook in the pid file with SIGTERM and waits
# for it to exit; any other process is left alone.
stop_demo() {
	[[ -f $pidfile ]] || { echo "no demo swarmhook to stop ($pidfile is missing)"; return 0; }
	local pid
	pid=$(<"$pidfile")
	if [[ ! $pid =~ ^[1-9][0-9]{0,9}$ ]]; then
		echo "$pidfile holds no PID; nothing stopped" >&2
		return 1
	fi
	if ! is_demo_swarmhook "$pid"; then
		echo "pid $pid is not the demo's swarmhook (any more); nothing stopped"
		rm -f "$pidfile"
		return 0
	fi
	kill -TERM "$pid"
	# Running jobs get 30 s to finish, notifications 5 s more.
	for ((i = 0; i < 250; i++)); do
		if ! is_demo_swarmhook "$pid"; then
			rm -f "$pidfile"
			echo "stopped swarmhook (pid $pid)"
			return 0
		fi
		sleep 0.2
	done
	echo "swarmhook (pid $pid) is still running 50 s after SIGTERM" >&2
	return 1
}

case ${1:-} in
"") ;;
stop)
	stop_demo
	exit
	;;
*)
	echo "usage: scripts/demo.sh [stop]" >&2
	exit 2
	;;
esac
secret=demo-webhook-secret
token=demo-admin-token-0123456789
registry=127.0.0.1:5000

bash scripts/infra.sh
command -v openssl >/dev/null || apt-get install -y -qq openssl >/dev/null

echo "--- building swarmhook and the demo app"
mkdir -p "$demo" bin
stop_demo # a previous run's, before its data goes
CGO_ENABLED=0 go build -o bin/swarmhook ./cmd/swarmhook
rm -rf "$demo/repo" "$demo/data"
mkdir -p "$demo/repo"
CGO_ENABLED=0 go build -o "$demo/repo/app" ./internal/testenv/testapp
cd "$demo/repo"
printf 'FROM scratch\nCOPY app /app\nCOPY version.txt /version.txt\nENTRYPOINT ["/app"]\n' > Dockerfile
echo "demo v1" > version.txt
git init -q -b main
git -c user.name=demo -c user.email=demo@example.com add -A
git -c user.name=demo -c user.email=demo@example.com commit -qm "demo v1"

echo "--- first image and the Swarm service demo_web (http://127.0.0.1:8081)"
docker build -q -t "$registry/demo/web:main-initial" . >/dev/null
docker push -q "$registry/demo/web:main-initial" >/dev/null
docker service rm demo_web >/dev/null 2>&1 || true
docker service create -q --name demo_web --replicas 1 --update-parallelism 1 --constraint node.role==manager \
	--publish mode=host,target=8080,published=8081 "$registry/demo/web:main-initial" >/dev/null
curl -s --retry 20 --retry-delay 1 --retry-all-errors http://127.0.0.1:8081/

cat > "$demo/config.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $demo/data
registry: {host: "$registry", insecure: true}
tokens: [{name: demo, token: $token, scopes: [admin]}]
projects:
  - name: demo
    repo: file://$demo/repo
    secret: $secret
    images: [{name: demo/web}]
    deploy:
      - branch: main
        services: [demo_web]
        update: {parallelism: 1, monitor: 2s}
YAML

echo "--- starting swarmhook on 127.0.0.1:$port (log: $demo/swarmhook.log)"
nohup "$root/bin/swarmhook" serve -config "$demo/config.yaml" -log-format console >"$demo/swarmhook.log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"
if ! curl -s --retry 30 --retry-delay 1 --retry-all-errors "http://127.0.0.1:$port/healthz" >/dev/null ||
	! is_demo_swarmhook "$pid"; then
	echo "swarmhook did not start:" >&2
	tail -n 20 "$demo/swarmhook.log" >&2
	exit 1
fi

echo "--- pushing demo v2 and sending GitHub's push webhook"
echo "demo v2" > version.txt
git -c user.name=demo -c user.email=demo@example.com commit -qam "demo v2"
after=$(git rev-parse HEAD)
body=$(printf '{"ref":"refs/heads/main","before":"%s","after":"%s","pusher":{"name":"demo"},"head_commit":{"id":"%s","message":"demo v2"}}' \
	"$(git rev-parse HEAD~1)" "$after" "$after")
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
answer=$(curl -s -X POST "http://127.0.0.1:$port/hooks/demo" -H 'X-GitHub-Event: push' \
	-H "X-Hub-Signature-256: sha256=$sig" -H 'Content-Type: application/json' --data "$body")
echo "swarmhook answered: $answer"
job=$(printf '%s' "$answer" | sed -n 's/.*"job":\([0-9]*\).*/\1/p')

echo "--- job $job, live:"
curl -sN -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/jobs/$job/log?follow=1"
echo "--- demo_web now answers:"
curl -s http://127.0.0.1:8081/
echo
echo "swarmhook keeps running as pid $pid (API token: $token, log: $demo/swarmhook.log)."
echo "Stop it with: scripts/demo.sh stop   (or: kill $pid)"
