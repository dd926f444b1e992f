// Package registry reads and moves tags over the registry HTTP API.
//
// It talks to the registry directly with go-containerregistry, never
// through the Docker engine: moving <branch>-latest is one manifest PUT of
// the manifest the timestamped tag already points at, so no layer is
// uploaded or checked again.
package registry
