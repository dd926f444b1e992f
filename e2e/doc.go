// Package e2e holds swarmhook's end-to-end tests: the real binary driving
// the real Docker engine, registry and three-node Swarm that
// scripts/infra.sh brings up. Nothing here is mocked.
//
// Tests call t.Parallel unless they change what others share: a test
// that stops a worker node or an engine, or sets the environment
// (t.Setenv), runs alone, before the parallel ones start. Every test
// names what it creates with testenv.Unique.
package e2e
