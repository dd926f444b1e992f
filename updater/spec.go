package updater

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// Creator is the engine call Create needs; *client.Client satisfies it.
type Creator interface {
	ServiceCreate(ctx context.Context, service swarm.ServiceSpec, options swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
}

// Replace sets the service's whole spec (a stack's service as its
// compose file describes it), with s as its rolling-update settings, and
// waits for Swarm to converge exactly as Update does: the same outcomes,
// the same error for anything but Updated. Its Result's Previous is the
// image it ran before, so Swarm's own rollback and rollback_all treat it
// like an image update.
func (u *Updater) Replace(ctx context.Context, spec swarm.ServiceSpec, s Settings, timeout time.Duration, log io.Writer) (Result, error) {
	name := spec.Name
	return u.change(ctx, name, timeout, log, modeUpdate, func(svc swarm.Service) (*swarm.ServiceSpec, Outcome, string) {
		if spec.TaskTemplate.ContainerSpec == nil {
			return nil, Failed, "the new spec has no container spec"
		}
		next := withImage(spec, spec.TaskTemplate.ContainerSpec.Image, s)
		// One more than the running counter: a change that keeps the
		// image (an env var) would otherwise look converged while the
		// old tasks still run, since convergence tells tasks of the new
		// spec by image and counter. Every task restarts for a new spec
		// anyway, so this costs no extra restart.
		next.TaskTemplate.ForceUpdate = svc.Spec.TaskTemplate.ForceUpdate + 1
		return &next, "", fmt.Sprintf("updating %s to the stack file's spec (parallelism %d, delay %s, order %s, failure action %s)",
			name, s.Parallelism, s.Delay, s.Order, s.FailureAction)
	})
}

// Create creates a service from spec, with s as its rolling-update
// settings, and waits until its tasks run the spec: Updated with a nil
// error, or the outcome and error Update would give.
func (u *Updater) Create(ctx context.Context, c Creator, spec swarm.ServiceSpec, s Settings, timeout time.Duration, log io.Writer) (Result, error) {
	res := Result{Service: spec.Name, Started: u.now()}
	if spec.TaskTemplate.ContainerSpec != nil {
		res.Image = spec.TaskTemplate.ContainerSpec.Image
	}
	spec = withImage(spec, res.Image, s)
	fmt.Fprintf(log, "service %s: creating it on %s\n", spec.Name, res.Image)
	resp, err := c.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: u.auth})
	if err == nil {
		for _, w := range resp.Warnings {
			fmt.Fprintf(log, "service %s: warning: %s\n", spec.Name, w)
		}
		res.Outcome, err = u.wait(ctx, resp.ID, spec.Name, timeout, modeUpdate, log)
	} else {
		res.Outcome, err = Failed, fmt.Errorf("create service %s: %w", spec.Name, err)
	}
	res.Finished = u.now()
	if err != nil {
		res.Message = err.Error()
		fmt.Fprintf(log, "service %s: %s: %v\n", spec.Name, res.Outcome, err)
	} else {
		fmt.Fprintf(log, "service %s: created\n", spec.Name)
	}
	return res, err
}
