// Package job runs swarmhook's jobs: fetch, build, push, tag, deploy.
//
// A Runner takes jobs from intake (webhooks, the API), records them in a
// Store, and runs them on a bounded pool of workers. Each stage is done by
// a small interface declared here and implemented by the source, builder,
// registry and updater packages, so the pipeline can be tested with fakes
// and every side effect lives in the package named for it.
package job
