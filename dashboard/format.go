package dashboard

import (
	"fmt"
	"time"

	"github.com/swarmhook/swarmhook/job"
)

// short is the first 8 characters of a commit or digest.
func short(s string) string {
	if i := len("sha256:"); len(s) > i && s[:i] == "sha256:" {
		s = s[i:]
	}
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// when formats a time in UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// dur is how long a job took, or has run so far.
func dur(j *job.Job, now time.Time) string {
	if j.Started.IsZero() {
		return ""
	}
	end := j.Finished
	if end.IsZero() {
		end = now
	}
	d := end.Sub(j.Started)
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// statusClass is the CSS class for a job status.
func statusClass(s job.Status) string {
	switch s {
	case job.Succeeded:
		return "ok"
	case job.Failed, job.Interrupted, job.Rejected, job.Expired:
		return "bad"
	case job.Running, job.Queued, job.Waiting:
		return "run"
	}
	return "dim"
}

// describe says what a job did, in a few words.
func describe(j *job.Job) string {
	switch j.Action {
	case job.ActionBuild:
		return "build " + j.Branch
	case job.ActionDeploy:
		return "deploy " + j.Tag
	case job.ActionPrune:
		return "prune"
	case job.ActionPromote:
		return "promote " + j.From + " to " + j.Environment
	case job.ActionScale:
		if j.Replicas != nil {
			return fmt.Sprintf("scale %s to %d", j.Service, *j.Replicas)
		}
	}
	if j.Tag != "" {
		return fmt.Sprintf("%s %s to %s", j.Action, j.Service, j.Tag)
	}
	return fmt.Sprintf("%s %s", j.Action, j.Service)
}
