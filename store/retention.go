package store

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// KeepHistory deletes jobs (and their logs) that finished more than keep
// ago, and delivery ids as old, once at start and then every interval,
// until ctx is done. keep <= 0 keeps everything.
func KeepHistory(ctx context.Context, s *SQLite, logs *LogDir, keep, interval time.Duration, log zerolog.Logger) {
	if keep <= 0 {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ids, err := s.Trim(ctx, time.Now().Add(-keep))
		if err != nil {
			log.Error().Err(err).Msg("trim job history")
		}
		for _, id := range ids {
			if err := logs.Remove(id); err != nil {
				log.Error().Err(err).Int64("job", id).Msg("remove job log")
			}
		}
		if len(ids) > 0 {
			log.Info().Int("jobs", len(ids)).Dur("older_than", keep).Msg("trimmed job history")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
