package job

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// transition moves j to status to, the one place a job's status changes:
// it stamps the time (Started, or Finished for an end), saves j with ds
// (the deliveries that joined it, not yet saved), logs the change and
// tells the observers. An end is saved with retries (see saveEnd) under
// ctx, which should be the runner's, not the job's.
func (r *Runner) transition(ctx context.Context, j *Job, to Status, ds ...*Delivery) error {
	log := r.jobLog(j)
	now := r.d.Now().UTC()
	j.Status = to
	var err error
	switch to {
	case Running, Waiting:
		if to == Running {
			j.Started = now
		}
		if err = r.d.Store.Save(ctx, j, ds...); err != nil {
			log.Error().Err(err).Msg("save job")
		}
	default:
		j.Finished, j.Stage = now, nil
		err = r.saveEnd(ctx, j, log, ds)
	}
	e := log.Info()
	switch to {
	case Failed:
		e = log.Error().Str("error", j.Error)
	case Interrupted:
		e = log.Warn().Str("error", j.Error)
	case Superseded:
		e = e.Int64("by", j.SupersededBy)
	case Waiting:
		e = e.Str("for", string(j.Wait.For)).Time("until", j.Wait.Until)
	case Running:
		e = e.Str("branch", j.Branch).Str("commit", j.Commit).Str("service", j.Service)
	case Succeeded:
		e = e.Dur("took", j.Finished.Sub(j.Started))
	}
	e.Msg("job " + string(to))
	for _, o := range r.d.Observers {
		o.JobChanged(j.Clone()) // a copy each: observers must not block
	}
	return err
}

// saveRetry is how long the first retry of a job's final save waits;
// each next one waits twice as long, up to saveRetryMax.
const (
	saveRetry    = time.Second
	saveRetryMax = 30 * time.Second
)

// saveEnd records how j ended, trying again until it is saved or runner
// (the runner's context, not the job's) is cancelled: a job left
// running in the store would never end for its log's followers, and
// until the next start Resume could not mark it interrupted. A full
// data_dir is the usual cause, and the save goes through once space
// returns.
func (r *Runner) saveEnd(runner context.Context, j *Job, log zerolog.Logger, ds []*Delivery) error {
	wait := saveRetry
	for tries := 1; ; tries++ {
		// Even when the job's own context is spent.
		err := r.d.Store.Save(context.WithoutCancel(runner), j, ds...)
		if err == nil {
			if tries > 1 {
				log.Info().Int("tries", tries).Str("status", string(j.Status)).Msg("job's end saved")
			}
			return nil
		}
		if runner.Err() != nil {
			log.Error().Err(err).Str("status", string(j.Status)).Msg("job's end not saved: the next start marks it interrupted")
			return err
		}
		log.Error().Err(err).Str("status", string(j.Status)).Dur("retry_in", wait).Msg("job's end not saved, trying again")
		t := time.NewTimer(wait)
		select {
		case <-runner.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, saveRetryMax)
	}
}
