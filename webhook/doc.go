// Package webhook turns Git host push deliveries into Push events.
//
// Parse verifies a delivery's signature against the project's secret in
// constant time, then decodes the provider's payload into the one Push type
// that everything after intake uses, so nothing downstream knows which host
// sent it. It never touches the network, the disk or the job queue.
package webhook
