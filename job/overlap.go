package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
)

// errBuildStopped is the cause given to the image builds of an overlapped
// pipeline when its deploy failed: nothing would use the images.
var errBuildStopped = errors.New("deploy failed: later images are not needed")

// imageStep is what the build side of an overlapped pipeline hands the
// deploy side after each of its stages.
type imageStep struct {
	stage  Stage
	image  int    // index into the job's images
	kind   string // build or push
	digest string // set by a successful push
	err    error
}

// overlap is the pipeline after fetch for a deploy target with
// pipeline: overlap. One goroutine builds and pushes the images in the
// project's order; this one rolls the services in order, each as soon as
// its own image is pushed and the service before it has converged. Only
// this goroutine touches j: the build side reports through a channel.
//
// A failed build stops the deploy before the next service; a failed
// update stops the builds. Either way on_failure applies to the services
// already changed, and the job waits for the build side to end. -latest
// moves as in the sequential pipeline: only once every image is pushed
// and every service runs it.
func (r *Runner) overlap(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, dir string, stamp time.Time, w io.Writer) error {
	// Which image each service waits for, known before anything builds.
	wants := make([]int, len(target.Services))
	for i, s := range target.Services {
		name, err := r.imageName(ctx, p, s)
		if err != nil {
			return fmt.Errorf("deploy %s: %w", s.Name, err)
		}
		wants[i] = slices.IndexFunc(p.Images, func(im config.Image) bool { return im.Name == name })
	}
	// The build side works on its own copy of the job.
	bj := j.Clone()
	buildCtx, stopBuilds := context.WithCancelCause(ctx)
	defer stopBuilds(nil)
	steps := make(chan imageStep, 3*len(p.Images))
	go r.buildInOrder(buildCtx, p, bj, dir, stamp, steps, w)

	ready := make([]bool, len(p.Images))
	var buildErr error
	apply := func(st imageStep) {
		j.Stages = append(j.Stages, st.stage)
		im := &j.Images[st.image]
		switch {
		case st.err != nil:
			buildErr = fmt.Errorf("%s: %w", st.kind, st.err)
		case st.kind == "push":
			im.Digest, im.Ref = st.digest, imageref.Pinned(r.d.Registry.Ref(im.Name, im.Tag), st.digest)
			ready[st.image] = true
		}
		r.save(ctx, j)
	}
	wait := func(i int) error {
		// Take what the build side already reported, then block until
		// this service's image is ready or a build failed.
		for drained := false; !drained; {
			select {
			case st, ok := <-steps:
				if !ok {
					drained = true
					break
				}
				apply(st)
			default:
				drained = true
			}
		}
		for !ready[wants[i]] && buildErr == nil {
			st, ok := <-steps
			if !ok {
				break
			}
			apply(st)
		}
		if buildErr != nil {
			return buildErr
		}
		if !ready[wants[i]] {
			return fmt.Errorf("image %s was not built", p.Images[wants[i]].Name)
		}
		return nil
	}
	err := r.deployInOrder(ctx, j, p, target, w, wait)
	if err != nil && buildErr == nil {
		stopBuilds(errBuildStopped)
	}
	for st := range steps {
		apply(st)
	}
	if err == nil {
		err = buildErr
	}
	if err != nil {
		return err
	}
	return r.tagLatest(ctx, j, w)
}

// buildInOrder builds and pushes each image of its own copy of the job
// in turn, with the same steps, retries and build timeout as the
// sequential pipeline, reporting every stage on steps; it closes steps
// when done or at the first failure.
func (r *Runner) buildInOrder(ctx context.Context, p *config.Project, bj *Job, dir string, stamp time.Time, steps chan<- imageStep, w io.Writer) {
	defer close(steps)
	ctx, cancel := buildDeadline(ctx, p)
	defer cancel()
	for i, im := range bj.Images {
		for _, kind := range []string{"build", "push"} {
			st := imageStep{image: i, kind: kind, stage: Stage{Name: kind + " " + im.Name, Started: r.d.Now().UTC()}}
			switch kind {
			case "build":
				st.err = r.buildImage(ctx, bj, p, i, dir, stamp, w)
			case "push":
				st.err = r.pushImage(ctx, bj, i, w)
				st.digest = bj.Images[i].Digest
			}
			st.err = withCause(ctx, st.err)
			st.stage.Finished = r.d.Now().UTC()
			st.stage.Millis = st.stage.Finished.Sub(st.stage.Started).Milliseconds()
			steps <- st
			if st.err != nil {
				return
			}
		}
	}
	r.pruneImages(ctx, bj, w)
}
