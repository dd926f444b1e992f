package config

import (
	"slices"
	"strings"
)

// The values a setting with a fixed set of choices may take. Each set is
// listed once, in the order an error message names them; validation and
// every user of a value take it from here.

// Scope is what an API token may do.
type Scope string

// Scopes a token may carry.
const (
	ScopeRead     Scope = "read"     // read jobs, logs, services and tags
	ScopeDeploy   Scope = "deploy"   // deploy a branch or tag, redeploy a service
	ScopeRollback Scope = "rollback" // roll a service back
	ScopeScale    Scope = "scale"    // scale a service
	ScopeApprove  Scope = "approve"  // approve or reject a deploy held for approval
	ScopeOverride Scope = "override" // deploy outside a window or through a freeze; set and lift freezes
	ScopeAdmin    Scope = "admin"    // all of the above, and prune
)

var scopes = []Scope{ScopeRead, ScopeDeploy, ScopeRollback, ScopeScale, ScopeApprove, ScopeOverride, ScopeAdmin}

// OnFailure is what a deploy target does when one of its services fails
// to update.
type OnFailure string

// What a deploy target does after a failed service.
const (
	// OnFailureStop leaves later services untouched.
	OnFailureStop OnFailure = "stop"
	// OnFailureRollbackAll also returns the services the job already
	// updated, in reverse order, to what they ran before.
	OnFailureRollbackAll OnFailure = "rollback_all"
)

var onFailures = []OnFailure{OnFailureStop, OnFailureRollbackAll}

// Pipeline is how a deploy target's builds and service updates overlap.
type Pipeline string

// Pipeline modes of a deploy target.
const (
	// PipelineSequential builds, pushes and tags every image before the
	// first service is touched.
	PipelineSequential Pipeline = "sequential"
	// PipelineOverlap rolls each service as soon as its own image is
	// pushed and tagged and the service before it has converged, while
	// later images still build.
	PipelineOverlap Pipeline = "overlap"
)

var pipelines = []Pipeline{PipelineSequential, PipelineOverlap}

// FailureAction is what Swarm does when a task fails during a rolling
// update (Swarm's own word for it).
type FailureAction string

// Swarm's failure actions.
const (
	FailureActionRollback FailureAction = "rollback"
	FailureActionPause    FailureAction = "pause"
	FailureActionContinue FailureAction = "continue"
)

var failureActions = []FailureAction{FailureActionRollback, FailureActionPause, FailureActionContinue}

// Order is whether Swarm stops an old task before starting its
// replacement, or after (Swarm's own word for it).
type Order string

// Swarm's update orders.
const (
	OrderStopFirst  Order = "stop-first"
	OrderStartFirst Order = "start-first"
)

var orders = []Order{OrderStopFirst, OrderStartFirst}

// Event is a moment in a job's life a notification may be sent for.
type Event string

// Events a notification may be sent for: a job started, or ended in one
// of these ways.
const (
	EventStarted     Event = "started"
	EventSuccess     Event = "success"
	EventFailure     Event = "failure"
	EventInterrupted Event = "interrupted"
	EventSuperseded  Event = "superseded"
	// EventWaiting: the job's images are pushed and its deploy waits
	// for an approval, a deploy window or the end of a freeze.
	EventWaiting Event = "waiting"
)

var events = []Event{EventStarted, EventSuccess, EventFailure, EventInterrupted, EventSuperseded, EventWaiting}

// Provider is a Git host commit statuses are posted to.
type Provider string

// Commit status providers.
const (
	ProviderGitHub  Provider = "github"
	ProviderGitLab  Provider = "gitlab"
	ProviderGitea   Provider = "gitea"
	ProviderForgejo Provider = "forgejo"
)

var providers = []Provider{ProviderGitHub, ProviderGitLab, ProviderGitea, ProviderForgejo}

// oneOf says, for an error message, which values are allowed: "a, b or c".
func oneOf[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// checkChoice records an error on field unless v is one of values.
func checkChoice[T ~string](f *findings, field string, v T, values []T) {
	if !slices.Contains(values, v) {
		f.bad(field, "%q must be %s", v, oneOf(values))
	}
}
