package job

import (
	"context"
	"fmt"
	"io"

	"github.com/swarmhook/swarmhook/imageref"
)

// promote deploys to the services of environment j.Environment exactly
// the digests the services of environment j.From run now, building
// nothing: it reads them from Swarm, checks that every service of the
// target gets one before any changes, then deploys like a build would
// (the target's order, outcomes and on_failure; its approval, windows
// and freezes).
func (r *Runner) promote(ctx context.Context, j *Job, w io.Writer) error {
	p, ok := r.cfg.Project(j.Project)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownProject, j.Project)
	}
	from, _, ok := p.Environment(j.From)
	if !ok {
		return fmt.Errorf("project %s has no environment %q", p.Name, j.From)
	}
	to, _, ok := p.Environment(j.Environment)
	if !ok {
		return fmt.Errorf("project %s has no environment %q", p.Name, j.Environment)
	}
	if err := r.stage(ctx, j, "resolve", w, func() error {
		for _, s := range from.Services {
			name, err := r.imageName(ctx, p, s)
			if err != nil {
				return fmt.Errorf("%s: %w", j.From, err)
			}
			cur, err := r.d.Updater.CurrentImage(ctx, s.Name)
			if err != nil {
				return fmt.Errorf("%s: %w", j.From, err)
			}
			digest := imageref.Digest(cur)
			if digest == "" {
				return fmt.Errorf("%s: service %s runs %s, which names no digest: nothing to promote byte for byte", j.From, s.Name, cur)
			}
			if err := addImage(j, Image{Name: name, Tag: imageref.Tag(cur), Digest: digest, Ref: cur}); err != nil {
				return fmt.Errorf("%s: %w", j.From, err)
			}
			fmt.Fprintf(w, "%s runs %s\n", s.Name, cur)
		}
		for _, s := range to.Services {
			if _, err := r.imageFor(ctx, j, p, s); err != nil {
				return fmt.Errorf("%s: %w (no service of %s runs it)", j.Environment, err, j.From)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("resolve %s: %w", j.From, err)
	}
	if err := r.gateDeploy(ctx, j, p, to, w); err != nil {
		return err
	}
	return r.deploy(ctx, j, p, to, w)
}

// addImage adds im to j's images, once per image name; two services
// running different digests of one image make it ambiguous.
func addImage(j *Job, im Image) error {
	for _, have := range j.Images {
		if have.Name != im.Name {
			continue
		}
		if have.Digest != im.Digest {
			return fmt.Errorf("its services run two digests of %s (%s and %s): promote once they agree", im.Name, have.Digest, im.Digest)
		}
		return nil
	}
	j.Images = append(j.Images, im)
	return nil
}
