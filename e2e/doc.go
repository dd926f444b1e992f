// Package e2e holds swarmhook's end-to-end tests: the real binary driving
// the real Docker engine, registry and single-node Swarm that
// scripts/infra.sh brings up. Nothing here is mocked.
package e2e
