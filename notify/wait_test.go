package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

func TestWaitingMessages(t *testing.T) {
	until := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		j     *job.Job
		event config.Event
		want  []string
	}{
		{
			name: "approval",
			j: &job.Job{ID: 42, Number: 7, Project: "shop", Action: job.ActionPromote, From: "staging", Environment: "production", Who: "alice", Status: job.Waiting,
				Wait: &job.Wait{For: job.WaitApproval, Scope: "approve", Until: until}},
			event: config.EventWaiting,
			want: []string{":hourglass: shop #7 waiting for approval: promote staging to production by alice",
				"approve scope approves it (POST /api/jobs/42/approve), by 2026-12-03T14:00:00Z",
				"<https://deploy.example.com/api/jobs/42|job 42>"},
		},
		{
			name:  "window",
			j:     &job.Job{ID: 43, Number: 8, Project: "shop", Action: job.ActionBuild, Branch: "main", Commit: "c0ffee", Status: job.Waiting, Wait: &job.Wait{For: job.WaitWindow, Until: until}},
			event: config.EventWaiting,
			want:  []string{"shop #8 waiting for deploy window: main at c0ffee, until 2026-12-03T14:00:00Z"},
		},
		{
			name:  "expired",
			j:     &job.Job{ID: 44, Number: 9, Project: "shop", Action: job.ActionBuild, Branch: "main", Status: job.Expired, Error: "no approval by 2026-12-03T14:00:00Z"},
			event: config.EventFailure,
			want:  []string{":x: shop #9 expired: main at : no approval by"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := eventOf(tc.j); got != tc.event {
				t.Fatalf("event = %q, want %q", got, tc.event)
			}
			text := slackText(tc.j, tc.event, JobURL("https://deploy.example.com/", tc.j.ID))
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("message %q lacks %q", text, w)
				}
			}
		})
	}
}
