package updater

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
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

// Settings are Swarm rolling-update settings.
type Settings struct {
	Parallelism     uint64
	Delay           time.Duration
	FailureAction   string
	Order           string
	Monitor         time.Duration
	MaxFailureRatio float32
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
}

// Result says how a service's update ended.
type Result struct {
	Service  string    `json:"service"`
	Outcome  Outcome   `json:"outcome"`
	Previous string    `json:"previous_image,omitempty"`
	Image    string    `json:"image"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Message  string    `json:"message,omitempty"`
}

// ErrNotConverged is wrapped by the error Update returns for any outcome
// other than Updated or Unchanged.
var ErrNotConverged = errors.New("updater: service did not converge")

// Defaults for waiting; a Swarm manager answers inspects in milliseconds.
const (
	pollInterval    = 250 * time.Millisecond
	conflictRetries = 5 // re-reads after a concurrent spec change
)

// Updater updates Swarm services. It is safe for concurrent use; callers
// make sure one service is not updated by two jobs at once.
type Updater struct {
	c    Client
	auth string
	now  func() time.Time
}

// New returns an Updater. registryAuth is passed with every update so every
// node can pull the image (see registry.Credentials.EngineAuth).
func New(c Client, registryAuth string) *Updater {
	return &Updater{c: c, auth: registryAuth, now: time.Now}
}

// CurrentImage returns the image the service's spec names now.
func (u *Updater) CurrentImage(ctx context.Context, service string) (string, error) {
	s, _, err := u.c.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect service %s: %w", service, err)
	}
	return specImage(s), nil
}

func specImage(s swarm.Service) string {
	if s.Spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	return s.Spec.TaskTemplate.ContainerSpec.Image
}

// Digest returns the sha256:... part of an image reference, or "".
func Digest(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	return ""
}

// Repository returns the repository part of repo:tag@digest.
func Repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// Update sets the service's image and rolling-update settings and waits
// for Swarm to converge. The returned error is nil only for Updated and
// Unchanged; the Result is filled in either way.
func (u *Updater) Update(ctx context.Context, req Request, log io.Writer) (Result, error) {
	res := Result{Service: req.Service, Image: req.Image, Started: u.now()}
	finish := func(o Outcome, err error) (Result, error) {
		res.Outcome, res.Finished = o, u.now()
		if err != nil {
			res.Message = err.Error()
			fmt.Fprintf(log, "service %s: %s: %v\n", req.Service, o, err)
		} else {
			fmt.Fprintf(log, "service %s: %s\n", req.Service, o)
		}
		return res, err
	}
	var svc swarm.Service
	for attempt := 0; ; attempt++ {
		var err error
		svc, _, err = u.c.ServiceInspectWithRaw(ctx, req.Service, swarm.ServiceInspectOptions{})
		if err != nil {
			return finish(Failed, fmt.Errorf("inspect service %s: %w", req.Service, err))
		}
		if svc.Spec.TaskTemplate.ContainerSpec == nil {
			return finish(Failed, fmt.Errorf("service %s has no container spec", req.Service))
		}
		res.Previous = specImage(svc)
		if d := Digest(req.Image); d != "" && Digest(res.Previous) == d {
			return finish(Unchanged, nil)
		}
		spec := withImage(svc.Spec, req.Image, req.Settings)
		fmt.Fprintf(log, "service %s: updating %s -> %s (parallelism %d, delay %s, order %s, failure action %s)\n",
			req.Service, res.Previous, req.Image, req.Settings.Parallelism, req.Settings.Delay, req.Settings.Order, req.Settings.FailureAction)
		resp, err := u.c.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{EncodedRegistryAuth: u.auth})
		if err != nil && isOutOfSequence(err) && attempt < conflictRetries {
			fmt.Fprintf(log, "service %s: changed by someone else meanwhile, reading it again\n", req.Service)
			continue
		}
		if err != nil {
			return finish(Failed, fmt.Errorf("update service %s: %w", req.Service, err))
		}
		for _, w := range resp.Warnings {
			fmt.Fprintf(log, "service %s: warning: %s\n", req.Service, w)
		}
		break
	}
	o, err := u.wait(ctx, svc.ID, req, log)
	return finish(o, err)
}

// withImage returns a copy of spec with only the image and the update
// settings changed.
func withImage(spec swarm.ServiceSpec, image string, s Settings) swarm.ServiceSpec {
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Image = image
	spec.TaskTemplate.ContainerSpec = &cs
	spec.UpdateConfig = &swarm.UpdateConfig{
		Parallelism:     s.Parallelism,
		Delay:           s.Delay,
		FailureAction:   s.FailureAction,
		Monitor:         s.Monitor,
		MaxFailureRatio: s.MaxFailureRatio,
		Order:           s.Order,
	}
	return spec
}

func isOutOfSequence(err error) bool {
	return strings.Contains(err.Error(), "update out of sequence")
}

// wait polls Swarm until the update settles or the deadline passes.
func (u *Updater) wait(ctx context.Context, id string, req Request, log io.Writer) (Outcome, error) {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	lastState, lastProgress := swarm.UpdateState("-"), ""
	for {
		svc, _, err := u.c.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return TimedOut, fmt.Errorf("%w: no convergence within %s", ErrNotConverged, timeout)
			}
			return Failed, fmt.Errorf("inspect service %s: %w", req.Service, err)
		}
		var state swarm.UpdateState
		var msg string
		if st := svc.UpdateStatus; st != nil {
			state, msg = st.State, st.Message
		}
		if state != lastState {
			if state != "" {
				fmt.Fprintf(log, "service %s: swarm says %s %s\n", req.Service, state, msg)
			}
			lastState = state
		}
		switch state {
		case swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackStarted:
			if state == swarm.UpdateStateRollbackCompleted {
				return RolledBack, fmt.Errorf("%w: swarm rolled it back: %s", ErrNotConverged, msg)
			}
		case swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
			return Paused, fmt.Errorf("%w: swarm paused the update: %s", ErrNotConverged, msg)
		case swarm.UpdateStateCompleted, "":
			done, progress, err := u.converged(ctx, svc, req.Image)
			if err != nil && ctx.Err() == nil {
				return Failed, err
			}
			if progress != lastProgress {
				fmt.Fprintf(log, "service %s: %s\n", req.Service, progress)
				lastProgress = progress
			}
			if done {
				return Updated, nil
			}
		}
		select {
		case <-ctx.Done():
			return TimedOut, fmt.Errorf("%w: no convergence within %s", ErrNotConverged, timeout)
		case <-tick.C:
		}
	}
}

// converged reports whether every task Swarm wants running is running the
// image, and as many as the service asks for.
func (u *Updater) converged(ctx context.Context, svc swarm.Service, image string) (bool, string, error) {
	tasks, err := u.c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", svc.ID),
		filters.Arg("desired-state", "running"),
	)})
	if err != nil {
		return false, "", fmt.Errorf("list tasks of %s: %w", svc.Spec.Name, err)
	}
	onImage, running := 0, 0
	for _, t := range tasks {
		if t.Spec.ContainerSpec == nil || t.Spec.ContainerSpec.Image != image {
			continue
		}
		onImage++
		if t.Status.State == swarm.TaskStateRunning {
			running++
		}
	}
	want := len(tasks)
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		want = int(*r.Replicas)
	}
	progress := fmt.Sprintf("%d/%d tasks running the new image", running, want)
	return running == want && onImage == len(tasks), progress, nil
}
