// Package e2e holds swarmhook's end-to-end tests: the real binary driving
// the real Docker engine, registry and three-node Swarm that
// scripts/infra.sh brings up. Nothing here is mocked.
//
// Tests call t.Parallel unless they change what others share: a test
// that stops a worker node or an engine, sets the environment
// (t.Setenv), or checks what the classic builder makes of a repository's
// files (its build cache is the engine's, shared by every test), runs
// alone, before the parallel ones start. Every test
// names what it creates with testenv.Unique.
package e2e
