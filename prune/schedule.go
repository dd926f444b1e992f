package prune

import (
	"context"
	"errors"
	"fmt"

	"github.com/robfig/cron/v3"

	"github.com/swarmhook/swarmhook/job"
)

// Schedule runs a prune on the cron schedule spec (5 fields or a
// descriptor such as @daily) until ctx is done. A run still going when
// the next is due makes that one skip: runs never overlap, neither with
// each other nor with a manual run.
func (p *Pruner) Schedule(ctx context.Context, spec string) error {
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	_, err := c.AddFunc(spec, func() {
		if _, err := p.Run(ctx, job.TriggerSchedule, ""); errors.Is(err, ErrRunning) {
			p.d.Log.Warn().Msg("scheduled prune skipped: a prune is still running")
		}
	})
	if err != nil {
		return fmt.Errorf("prune schedule %q: %w", spec, err)
	}
	p.d.Log.Info().Str("schedule", spec).Msg("prune scheduled")
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}
