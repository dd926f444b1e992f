package updater

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmhook/swarmhook/imageref"
)

// Client is the part of the Docker Engine API the updater uses;
// *client.Client satisfies it.
type Client interface {
	ServiceInspectWithRaw(ctx context.Context, serviceID string, opts swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
}

// Outcome is how one service's update ended.
type Outcome string

// Outcomes. Only Updated and Unchanged are successes.
const (
	// Updated: Swarm completed the update and every task runs the image.
	Updated Outcome = "updated"
	// Unchanged: the service already ran that digest; nothing restarted.
	Unchanged Outcome = "unchanged"
	// RolledBack: Swarm's failure action reverted the service.
	RolledBack Outcome = "rolled_back"
	// Paused: Swarm paused the update after failures.
	Paused Outcome = "paused"
	// TimedOut: the update did not converge before the deadline.
	TimedOut Outcome = "timed_out"
	// Failed: the update could not be started at all.
	Failed Outcome = "failed"
	// Skipped: not attempted because an earlier service in the order failed.
	Skipped Outcome = "skipped"
)

// Pace is how Swarm rolls tasks: its update or rollback config.
type Pace struct {
	Parallelism     uint64
	Delay           time.Duration
	FailureAction   string
	Order           string
	Monitor         time.Duration
	MaxFailureRatio float32
}

// Settings are Swarm rolling-update settings.
type Settings struct {
	Pace
	// Rollback configures Swarm's own rollback; zero means the same
	// pace as the update, pausing if the rollback fails too.
	Rollback Pace
}

// Request asks for one service to run a new image.
type Request struct {
	// Service is the Swarm service name or ID.
	Service string
	// Image is repo:tag@sha256:..., pinned by digest.
	Image string
	// Settings are the rolling-update settings to apply.
	Settings Settings
	// Timeout bounds the wait for convergence.
	Timeout time.Duration
	// PrePull pulls the image on every node the service may run on
	// before its rolling update starts (see prePull).
	PrePull bool
}

// Result says how a service's update ended.
type Result struct {
	Service  string    `json:"service"`
	Outcome  Outcome   `json:"outcome"`
	Previous string    `json:"previous_image,omitempty"`
	Image    string    `json:"image,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Message  string    `json:"message,omitempty"`
}

// ErrNotConverged is wrapped by the error Update returns for any outcome
// other than Updated or Unchanged.
var ErrNotConverged = errors.New("updater: service did not converge")

// Defaults for waiting; a Swarm manager answers inspects in milliseconds.
const (
	pollInterval    = 500 * time.Millisecond // fallback when no event arrives
	conflictRetries = 5                      // re-reads after a concurrent spec change
)

// EventSource is the engine's event stream; *client.Client satisfies it.
type EventSource interface {
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// Updater updates Swarm services. It is safe for concurrent use; callers
// make sure one service is not updated by two jobs at once.
type Updater struct {
	c      Client
	events EventSource
	auth   string
	now    func() time.Time
	poll   time.Duration
}

// New returns an Updater. registryAuth is passed with every update so every
// node can pull the image (see registry.Credentials.EngineAuth). When c is
// also an EventSource, waits wake on the engine's events, not only polls.
func New(c Client, registryAuth string) *Updater {
	u := &Updater{c: c, auth: registryAuth, now: time.Now, poll: pollInterval}
	if es, ok := c.(EventSource); ok {
		u.events = es
	}
	return u
}

// CurrentImage returns the image the service's spec names now.
// A service that does not exist is a *NoServiceError.
func (u *Updater) CurrentImage(ctx context.Context, service string) (string, error) {
	s, err := u.inspect(ctx, service)
	if err != nil {
		return "", err
	}
	return specImage(s), nil
}

func specImage(s swarm.Service) string {
	if s.Spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	return s.Spec.TaskTemplate.ContainerSpec.Image
}

// Update sets the service's image and rolling-update settings and waits
// for Swarm to converge. The returned error is nil only for Updated and
// Unchanged; the Result is filled in either way. A service that does not
// exist is a *NoServiceError, and so for Rollback, Redeploy and Scale.
func (u *Updater) Update(ctx context.Context, req Request, log io.Writer) (Result, error) {
	pulled := false
	return u.change(ctx, req.Service, req.Timeout, log, modeUpdate, func(svc swarm.Service) (*swarm.ServiceSpec, Outcome, string) {
		if d := imageref.Digest(req.Image); d != "" && imageref.Digest(specImage(svc)) == d {
			return nil, Unchanged, ""
		}
		if req.PrePull && !pulled { // once, not again after a concurrent change
			pulled = true
			u.prePull(ctx, svc, req.Image, req.Timeout, log)
		}
		spec := withImage(svc.Spec, req.Image, req.Settings)
		s := req.Settings
		return &spec, "", fmt.Sprintf("updating %s -> %s (parallelism %d, delay %s, order %s, failure action %s)",
			specImage(svc), req.Image, s.Parallelism, s.Delay, s.Order, s.FailureAction)
	})
}

// Rollback asks Swarm to return the service to its previous spec, its own
// rollback target, and waits for that to finish. Success is RolledBack
// with a nil error.
func (u *Updater) Rollback(ctx context.Context, service string, timeout time.Duration, log io.Writer) (Result, error) {
	return u.change(ctx, service, timeout, log, modeRollback, func(svc swarm.Service) (*swarm.ServiceSpec, Outcome, string) {
		if svc.PreviousSpec == nil {
			return nil, Failed, "service has no previous spec to roll back to"
		}
		spec := svc.Spec
		return &spec, "", "rolling back to the previous spec"
	})
}

// Redeploy restarts every task of the service on the image it runs now,
// one batch at a time by its update settings.
func (u *Updater) Redeploy(ctx context.Context, service string, timeout time.Duration, log io.Writer) (Result, error) {
	return u.change(ctx, service, timeout, log, modeUpdate, func(svc swarm.Service) (*swarm.ServiceSpec, Outcome, string) {
		spec := svc.Spec
		spec.TaskTemplate.ForceUpdate++
		return &spec, "", "restarting every task on " + specImage(svc)
	})
}

// Scale sets a replicated service's replica count and waits until that
// many tasks run.
func (u *Updater) Scale(ctx context.Context, service string, replicas uint64, timeout time.Duration, log io.Writer) (Result, error) {
	return u.change(ctx, service, timeout, log, modeUpdate, func(svc swarm.Service) (*swarm.ServiceSpec, Outcome, string) {
		if svc.Spec.Mode.Replicated == nil {
			return nil, Failed, "only replicated services can be scaled"
		}
		if r := svc.Spec.Mode.Replicated.Replicas; r != nil && *r == replicas {
			return nil, Unchanged, ""
		}
		spec := svc.Spec
		rep := *spec.Mode.Replicated
		rep.Replicas = &replicas
		spec.Mode.Replicated = &rep
		return &spec, "", fmt.Sprintf("scaling to %d replicas", replicas)
	})
}

type mode int

const (
	modeUpdate mode = iota
	modeRollback
)

// editFunc decides the new spec from the service as it is now: a spec to
// write, or no spec and the outcome to report at once (Unchanged, or
// Failed with a reason).
type editFunc func(svc swarm.Service) (spec *swarm.ServiceSpec, done Outcome, msg string)

// change applies an edit, retrying on a concurrent change, and waits for
// Swarm to settle.
func (u *Updater) change(ctx context.Context, service string, timeout time.Duration, log io.Writer, m mode, edit editFunc) (Result, error) {
	res := Result{Service: service, Started: u.now()}
	finish := func(o Outcome, err error) (Result, error) {
		res.Outcome, res.Finished = o, u.now()
		if err != nil {
			res.Message = err.Error()
			fmt.Fprintf(log, "service %s: %s: %v\n", service, o, err)
		} else {
			fmt.Fprintf(log, "service %s: %s\n", service, o)
		}
		return res, err
	}
	var svc swarm.Service
	for attempt := 0; ; attempt++ {
		var err error
		svc, err = u.inspect(ctx, service)
		if err != nil {
			return finish(Failed, err)
		}
		if svc.Spec.TaskTemplate.ContainerSpec == nil {
			return finish(Failed, fmt.Errorf("service %s has no container spec", service))
		}
		res.Previous, res.Image = specImage(svc), specImage(svc)
		spec, done, msg := edit(svc)
		if spec == nil {
			if done == Failed {
				return finish(Failed, fmt.Errorf("service %s: %s", service, msg))
			}
			return finish(done, nil)
		}
		res.Image = spec.TaskTemplate.ContainerSpec.Image
		fmt.Fprintf(log, "service %s: %s\n", service, msg)
		opts := swarm.ServiceUpdateOptions{EncodedRegistryAuth: u.auth}
		if m == modeRollback {
			opts.Rollback = "previous"
		}
		resp, err := u.c.ServiceUpdate(ctx, svc.ID, svc.Version, *spec, opts)
		if err != nil && isOutOfSequence(err) && attempt < conflictRetries {
			fmt.Fprintf(log, "service %s: changed by someone else meanwhile, reading it again\n", service)
			continue
		}
		if err != nil {
			return finish(Failed, fmt.Errorf("update service %s: %w", service, err))
		}
		for _, w := range resp.Warnings {
			fmt.Fprintf(log, "service %s: warning: %s\n", service, w)
		}
		break
	}
	o, err := u.wait(ctx, svc.ID, service, timeout, m, log)
	if m == modeRollback {
		if s, _, ierr := u.c.ServiceInspectWithRaw(ctx, svc.ID, swarm.ServiceInspectOptions{}); ierr == nil {
			res.Image = specImage(s)
		}
	}
	return finish(o, err)
}

// withImage returns a copy of spec with only the image and the update
// settings changed; Swarm's rollback settings follow the same values.
func withImage(spec swarm.ServiceSpec, image string, s Settings) swarm.ServiceSpec {
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Image = image
	spec.TaskTemplate.ContainerSpec = &cs
	spec.UpdateConfig = s.Pace.config()
	rb := s.Rollback
	if rb == (Pace{}) {
		rb = s.Pace
		rb.FailureAction = swarm.UpdateFailureActionPause
	}
	spec.RollbackConfig = rb.config()
	return spec
}

func (p Pace) config() *swarm.UpdateConfig {
	return &swarm.UpdateConfig{
		Parallelism:     p.Parallelism,
		Delay:           p.Delay,
		FailureAction:   p.FailureAction,
		Monitor:         p.Monitor,
		MaxFailureRatio: p.MaxFailureRatio,
		Order:           p.Order,
	}
}

func isOutOfSequence(err error) bool {
	return strings.Contains(err.Error(), "update out of sequence")
}

// wait watches Swarm until the change settles or the deadline passes. It
// wakes on the engine's events for the service and its containers, and
// polls as a fallback for what events do not cover (other nodes' tasks).
func (u *Updater) wait(ctx context.Context, id, name string, timeout time.Duration, m mode, log io.Writer) (Outcome, error) {
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wake := u.watch(ctx, id)
	tick := time.NewTicker(u.poll)
	defer tick.Stop()
	lastState, lastProgress := swarm.UpdateState("-"), ""
	for {
		svc, _, err := u.c.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return u.timedOut(ctx, id, timeout)
			}
			return Failed, fmt.Errorf("inspect service %s: %w", name, err)
		}
		var state swarm.UpdateState
		var msg string
		if st := svc.UpdateStatus; st != nil {
			state, msg = st.State, st.Message
		}
		if state != lastState {
			if state != "" {
				fmt.Fprintf(log, "service %s: swarm says %s %s\n", name, state, msg)
			}
			lastState = state
		}
		settled := false
		switch state {
		case swarm.UpdateStateRollbackCompleted:
			if m != modeRollback {
				return RolledBack, fmt.Errorf("%w: swarm rolled it back: %s", ErrNotConverged, msg)
			}
			settled = true
		case swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
			return Paused, fmt.Errorf("%w: swarm paused the update: %s", ErrNotConverged, msg)
		case swarm.UpdateStateCompleted, "":
			settled = m == modeUpdate
		}
		if settled {
			done, progress, err := u.converged(ctx, svc)
			if err != nil && ctx.Err() == nil {
				return Failed, err
			}
			if progress != lastProgress {
				fmt.Fprintf(log, "service %s: %s\n", name, progress)
				lastProgress = progress
			}
			if done && m == modeRollback {
				return RolledBack, nil
			}
			if done {
				return Updated, nil
			}
		}
		select {
		case <-ctx.Done():
			return u.timedOut(ctx, id, timeout)
		case <-wake:
		case <-tick.C:
		}
	}
}

// watch turns the engine's events about the service and its containers
// into wake-ups. If the event stream fails, the caller's polling carries on.
func (u *Updater) watch(ctx context.Context, id string) <-chan struct{} {
	wake := make(chan struct{}, 1)
	if u.events == nil {
		return wake
	}
	msgs, errs := u.events.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.ContainerEventType)),
	)})
	go func() {
		for {
			select {
			case m := <-msgs:
				if m.Actor.ID == id || m.Actor.Attributes["com.docker.swarm.service.id"] == id {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return wake
}

// converged reports whether every task Swarm wants running runs the
// service's current spec (image and force-update counter), and as many
// as the service asks for.
func (u *Updater) converged(ctx context.Context, svc swarm.Service) (bool, string, error) {
	tasks, err := u.c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", svc.ID),
		filters.Arg("desired-state", "running"),
	)})
	if err != nil {
		return false, "", fmt.Errorf("list tasks of %s: %w", svc.Spec.Name, err)
	}
	image, force := specImage(svc), svc.Spec.TaskTemplate.ForceUpdate
	current, running := 0, 0
	for _, t := range tasks {
		if t.Spec.ContainerSpec == nil || t.Spec.ContainerSpec.Image != image || t.Spec.ForceUpdate != force {
			continue
		}
		current++
		if t.Status.State == swarm.TaskStateRunning {
			running++
		}
	}
	want := len(tasks)
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		want = int(*r.Replicas)
	}
	progress := fmt.Sprintf("%d/%d tasks running the current spec", running, want)
	return running == want && current == len(tasks), progress, nil
}

// timedOut is the TimedOut outcome of a wait whose deadline passed; its
// error says how far Swarm got and what held it (see stuck).
func (u *Updater) timedOut(ctx context.Context, id string, timeout time.Duration) (Outcome, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := fmt.Errorf("%w: no convergence within %s", ErrNotConverged, timeout)
	svc, _, ierr := u.c.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if ierr != nil {
		return TimedOut, err
	}
	_, progress, cerr := u.converged(ctx, svc)
	if cerr != nil {
		return TimedOut, err
	}
	if st := svc.UpdateStatus; st != nil && st.State != "" {
		progress = fmt.Sprintf("swarm still says %s (%s); %s", st.State, st.Message, progress)
	}
	return TimedOut, fmt.Errorf("%w: %s%s", err, progress, u.stuck(ctx, svc))
}

// stuck describes the tasks Swarm wants running that hold the update: of
// the current spec and not running, or still on another spec, each with
// its node (and that node's state when it is not ready), its state and
// Swarm's reason (a lost node, no node left that may take the task, a
// failed pull). Empty when there are none or they cannot be listed.
func (u *Updater) stuck(ctx context.Context, svc swarm.Service) string {
	tasks, err := u.c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", svc.ID), filters.Arg("desired-state", "running"))})
	if err != nil {
		return ""
	}
	nodes := u.nodes(ctx)
	image, force := specImage(svc), svc.Spec.TaskTemplate.ForceUpdate
	var out []string
	for _, t := range tasks {
		current := t.Spec.ContainerSpec != nil && t.Spec.ContainerSpec.Image == image && t.Spec.ForceUpdate == force
		if current && t.Status.State == swarm.TaskStateRunning {
			continue
		}
		node := "no node"
		if n, ok := nodes[t.NodeID]; ok {
			node = n.Description.Hostname
			if n.Status.State != swarm.NodeStateReady {
				node += " (node " + string(n.Status.State) + ")"
			}
		} else if t.NodeID != "" {
			node = t.NodeID
		}
		what := string(t.Status.State)
		if !current {
			what = "still " + what + " the previous spec"
		}
		if reason := cmp.Or(t.Status.Err, t.Status.Message); reason != "" && current {
			what += " (" + reason + ")"
		}
		out = append(out, fmt.Sprintf("task %d on %s %s", t.Slot, node, what))
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	return "; " + strings.Join(out, "; ")
}
