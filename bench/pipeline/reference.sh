#!/usr/bin/env bash
# The hand-written pipeline swarmhook replaces, as a CI job would run it on
# a push: update a warm working copy to the pushed commit, then for each
# image docker build, docker tag, docker push of the timestamped tag and
# again of -latest, then docker service update --image for each service,
# one after another (the CLI waits until each has converged).
#
#   reference.sh WORKDIR COMMIT REGISTRY/NAMESPACE IMAGES SERVICES
#
# IMAGES is "name=context ..." (contexts relative to WORKDIR); SERVICES is
# "service=image ..." in deploy order. The driver (main.go) runs it with
# the same repository, images and services swarmhook gets.
# With STEP_LOG set, each step appends "name start end" (Unix seconds,
# from bash's own clock: no extra process) to that file for the stage
# breakdown; without it the script is the plain pipeline.
set -euo pipefail
workdir=$1 commit=$2 ns=$3 images=$4 services=$5
branch=main

step() {
	local name=$1 start=$EPOCHREALTIME
	shift
	"$@"
	if [ -n "${STEP_LOG:-}" ]; then echo "$name $start $EPOCHREALTIME" >>"$STEP_LOG"; fi
}
fetch() { git fetch -q origin && git checkout -q -f "$1"; }

cd "$workdir"
step fetch fetch "$commit"

ts=$(date -u +%Y%m%d%H%M%S)
for pair in $images; do
	name=${pair%%=*} context=${pair#*=}
	step "build $name" docker build -q -t "$ns/$name:$branch-$ts" "$context" >/dev/null
	step "tag $name" docker tag "$ns/$name:$branch-$ts" "$ns/$name:$branch-latest"
	step "push $name" docker push -q "$ns/$name:$branch-$ts" >/dev/null
	step "push-latest $name" docker push -q "$ns/$name:$branch-latest" >/dev/null
done
for pair in $services; do
	service=${pair%%=*} name=${pair#*=}
	step "deploy $service" docker service update -q --image "$ns/$name:$branch-$ts" "$service" >/dev/null
done
echo "$ts"
