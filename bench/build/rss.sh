#!/usr/bin/env bash
# Peak memory of the real swarmhook process through one whole job whose
# build context is MB megabytes (default 200) of incompressible files:
# fetch (go-git, into a fresh mirror, from `git daemon` on loopback, a
# real Git server as a Git host would be), build (context streamed to the
# engine), push and tag. VmRSS is sampled every 20 ms and attributed to
# the job's stages; VmHWM is the kernel's peak for the whole process.
#
#   bench/build/rss.sh
#   MB=50 bench/build/rss.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${MB:-200}
work=$(mktemp -d)
pid=""
gitd=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	if [ -n "$gitd" ]; then kill "$gitd" 2>/dev/null || true; wait "$gitd" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/swarmhook" ./cmd/swarmhook
repo="$work/repo"
mkdir -p "$repo"
git -C "$repo" init -q -b main
for i in $(seq 1 $((MB / 10))); do head -c $((10 << 20)) /dev/urandom >"$repo/data-$i.bin"; done
printf 'FROM scratch\nCOPY Dockerfile /\n' >"$repo/Dockerfile"
git -C "$repo" add -A
git -C "$repo" -c user.name=b -c user.email=b@b commit -q -m context
# Packed once, without delta search on random data, as a Git host keeps
# its repositories: serving then reuses the pack instead of compressing.
git -C "$repo" -c pack.window=0 repack -adq

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
gport=$(freeport)
git daemon --reuseaddr --export-all --base-path="$work" --listen=127.0.0.1 --port="$gport" "$work" 2>"$work/git-daemon.log" &
gitd=$!
port=$(freeport)
BENCH_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_TOKEN
ns="bench-rss-$(date +%s)"
cat >"$work/config.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $work/data
tokens: [{name: bench, token: "\${BENCH_TOKEN}", scopes: [admin]}]
registry: {host: "127.0.0.1:5000", insecure: true}
docker: {keep_images: 1}
projects:
  - name: bench
    repo: git://127.0.0.1:$gport/repo
    allow_unsigned: true
    images: [{name: $ns/app}]
YAML
"$work/swarmhook" serve -config "$work/config.yaml" -log-level warn 2>"$work/swarmhook.log" &
pid=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
	sleep 0.1
done
( while kill -0 "$pid" 2>/dev/null; do
	printf '%s %s\n' "$(date +%s.%N)" "$(awk '/^VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null)"
	sleep 0.02
done ) >"$work/rss.txt" &
sampler=$!
job=$(curl -fsS -X POST -H "Authorization: Bearer $BENCH_TOKEN" -d '{"branch":"main"}' \
	"http://127.0.0.1:$port/api/projects/bench/deploy?wait=1" || true)
hwm=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
kill "$sampler" 2>/dev/null || true
docker image rm -f "127.0.0.1:5000/$ns/app:main-latest" >/dev/null 2>&1 || true
docker images --format '{{.Repository}}:{{.Tag}}' | grep "/$ns/" | xargs -r docker image rm -f >/dev/null 2>&1 || true
JOB="$job" HWM="$hwm" MB="$MB" python3 - "$work/rss.txt" <<'PY'
import json, os, sys, datetime
job = json.loads(os.environ["JOB"])
print(f"job {job['id']}: {job['status']} {job.get('error', '')}")
samples = []
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 2 and p[1].isdigit():
        samples.append((float(p[0]), int(p[1])))
def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
print(f"context: {os.environ['MB']} MB; {len(samples)} RSS samples")
for st in job["stages"]:
    a, b = ts(st["started"]), ts(st["finished"])
    peak = max((r for t, r in samples if a <= t <= b), default=0)
    print(f"  stage {st['name']:6s} {st['ms']:6d} ms  peak VmRSS {peak/1024:6.1f} MB")
print(f"whole process VmHWM: {int(os.environ['HWM'])/1024:.1f} MB (issue: < 60 MB while building)")
PY
