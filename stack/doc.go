// Package stack deploys a compose file from a repository as a Swarm
// stack, the way docker stack deploy names and labels things, but as a
// plan swarmhook can show and an ordered rollout it awaits.
//
// Load reads the file from a job's work tree (through an os.Root, size
// bounded), refuses every key outside a short allow-list (the repository
// is untrusted: no host mounts, no privileges, no host namespaces, no
// resources outside the stack's namespace), interpolates ${VAR} from the
// deploy target's values only, and converts it to Swarm specs. Plan
// compares those with what runs; Apply carries a plan out through a
// Rollout that creates and updates services and waits for them.
package stack
