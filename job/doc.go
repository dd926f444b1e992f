// Package job runs swarmhook's jobs: fetch, build, push, tag, deploy.
//
// A Runner takes jobs from intake (webhooks, the API), records them in a
// Store, and runs them on a bounded pool of workers. Builds wait in a
// Queue (queue.go: pure, no I/O), where a push to a branch whose build
// waits joins it in memory; every status change goes through one
// function (transition.go); service actions and on-demand jobs such as
// a prune live in actions.go. Each stage is done by a small interface
// declared here and implemented by the source, builder, registry and
// updater packages, so the pipeline can be tested with fakes and every
// side effect lives in the package named for it.
package job
