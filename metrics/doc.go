// Package metrics keeps swarmhook's Prometheus metrics and serves them:
// jobs by status, stage durations, queue depth, webhook deliveries by
// provider and outcome, notifications by kind and outcome, and registry
// and engine errors.
//
// A Metrics is a job.Observer, a notify.Recorder and the server's
// delivery counter; it also wraps the runner's engine and registry
// clients to count their errors. Everything on it is safe for concurrent
// use. Each Metrics has its own registry, so tests never share counters.
package metrics
