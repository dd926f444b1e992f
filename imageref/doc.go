// Package imageref builds and takes apart image references
// (host/name:tag@digest) as strings. It is pure: no I/O, no state, and
// it imports nothing of swarmhook's.
//
// It splits the syntax only and validates nothing: a reference Swarm or
// the registry hands back is taken as it is. Where a reference is built
// for the registry, the registry package validates it.
package imageref
