package job

import (
	"context"
	"fmt"
	"io"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/updater"
)

// deploy updates the target's services strictly in order; the first
// failure stops it and the rest are recorded as skipped.
func (r *Runner) deploy(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, w io.Writer) error {
	for i, s := range target.Services {
		var res updater.Result
		err := r.stage(ctx, j, "deploy "+s.Name, w, func() error {
			image, err := r.imageFor(ctx, j, p, s)
			if err != nil {
				res = updater.Result{Service: s.Name, Outcome: updater.Failed, Message: err.Error()}
				return err
			}
			unlock := r.lockService(s.Name)
			defer unlock()
			res, err = r.d.Updater.Update(ctx, updater.Request{
				Service:  s.Name,
				Image:    image,
				Settings: settings(target.Update),
				Timeout:  target.Timeout.Duration,
			}, w)
			return err
		})
		j.Services = append(j.Services, res)
		if err != nil {
			for _, rest := range target.Services[i+1:] {
				j.Services = append(j.Services, updater.Result{Service: rest.Name, Outcome: updater.Skipped})
			}
			return fmt.Errorf("deploy %s: %w", s.Name, err)
		}
	}
	return nil
}

// imageFor picks the pushed image a service gets: the one it names, or
// the one whose repository it runs now.
func (r *Runner) imageFor(ctx context.Context, j *Job, p *config.Project, s config.Service) (string, error) {
	if s.Image != "" {
		for _, im := range j.Images {
			if im.Name == s.Image {
				return im.Ref, nil
			}
		}
		return "", fmt.Errorf("service %s: image %s was not built", s.Name, s.Image)
	}
	cur, err := r.d.Updater.CurrentImage(ctx, s.Name)
	if err != nil {
		return "", err
	}
	repo := updater.Repository(cur)
	for _, im := range j.Images {
		if updater.Repository(im.Ref) == repo {
			return im.Ref, nil
		}
	}
	return "", fmt.Errorf("service %s runs %s, which is none of project %s's images: name one with image:", s.Name, cur, p.Name)
}

func settings(u config.Update) updater.Settings {
	return updater.Settings{
		Parallelism:     *u.Parallelism,
		Delay:           u.Delay.Duration,
		FailureAction:   u.FailureAction,
		Order:           u.Order,
		Monitor:         u.Monitor.Duration,
		MaxFailureRatio: u.MaxFailureRatio,
	}
}

// serviceAction runs the jobs that change a service without building.
func (r *Runner) serviceAction(ctx context.Context, j *Job, w io.Writer) error {
	return fmt.Errorf("action %q is not supported yet", j.Action)
}
