// Package prune deletes old <branch>-<timestamp> tags from the registry
// without ever deleting what is live.
//
// One run gathers what must survive (every image a Swarm service runs, a
// task still runs, or a service would roll back to; every tag or digest a
// queued or running job is about to deploy), lists every configured
// repository's tags and digests, asks tagpolicy for a plan, gathers the
// protections again to catch a deploy that started meanwhile, and deletes
// one tag at a time so no manifest another tag needs is touched. Listing
// and deleting run concurrently, bounded by prune.concurrency. Each real
// run is recorded as a job with per-repository counts, the deleted tags
// in its log. Runs never overlap.
//
// Blobs are not reclaimed here: that is the registry's garbage collector.
package prune
