package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

// eventOf names what happened to j, as the notify.on config key spells
// it, or "" when nothing is worth telling (a job just queued).
func eventOf(j *job.Job) config.Event {
	switch j.Status {
	case job.Running:
		return config.EventStarted
	case job.Succeeded:
		return config.EventSuccess
	case job.Failed:
		return config.EventFailure
	case job.Interrupted:
		return config.EventInterrupted
	case job.Superseded:
		return config.EventSuperseded
	case job.Waiting:
		return config.EventWaiting
	case job.Rejected, job.Expired:
		// The deploy did not happen: a failure to those who wait for it.
		return config.EventFailure
	}
	return ""
}

// JobURL is where people see job id, or "" without a public URL.
func JobURL(publicURL string, id int64) string {
	if publicURL == "" {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + "/api/jobs/" + strconv.FormatInt(id, 10)
}

// short cuts a commit id to the length people read.
func short(commit string) string {
	if len(commit) > 8 {
		return commit[:8]
	}
	return commit
}

// subject says what the job works on: a branch and commit, or a service.
func subject(j *job.Job) string {
	var s string
	switch {
	case j.Action == job.ActionBuild:
		s = fmt.Sprintf("%s at %s", j.Branch, short(j.Commit))
	case j.Action == job.ActionPromote:
		s = fmt.Sprintf("promote %s to %s", j.From, j.Environment)
	case j.Tag != "":
		s = fmt.Sprintf("%s %s to %s", j.Action, j.Service, j.Tag)
	default:
		s = fmt.Sprintf("%s %s", j.Action, j.Service)
	}
	if j.Who != "" {
		s += " by " + job.Printable(j.Who)
	}
	return s
}

// took is how long a finished job ran, rounded for people.
func took(j *job.Job) string {
	if j.Started.IsZero() || j.Finished.IsZero() {
		return ""
	}
	return j.Finished.Sub(j.Started).Round(time.Second).String()
}

// summary is one line about how the job went, without markup.
func summary(j *job.Job, event config.Event) string {
	head := fmt.Sprintf("%s #%d", j.Project, j.Number)
	switch event {
	case config.EventStarted:
		return fmt.Sprintf("%s started: %s", head, subject(j))
	case config.EventSuccess:
		return fmt.Sprintf("%s succeeded: %s, in %s", head, subject(j), took(j))
	case config.EventSuperseded:
		return fmt.Sprintf("%s superseded by job %d: %s", head, j.SupersededBy, subject(j))
	case config.EventWaiting:
		return waitSummary(head, j)
	}
	return fmt.Sprintf("%s %s: %s: %s", head, j.Status, subject(j), job.Printable(j.Error))
}

// waitSummary says what a held deploy waits for and until when, and what
// ends the wait.
func waitSummary(head string, j *job.Job) string {
	w := j.Wait
	if w == nil {
		return fmt.Sprintf("%s waits: %s", head, subject(j))
	}
	s := fmt.Sprintf("%s %s: %s", head, w.StageName(), subject(j))
	switch {
	case w.For == job.WaitApproval:
		s += fmt.Sprintf("; a token with the %s scope approves it (POST /api/jobs/%d/approve)", job.Printable(w.Scope), j.ID)
		if !w.Until.IsZero() {
			s += ", by " + w.Until.UTC().Format(time.RFC3339)
		}
	case !w.Until.IsZero():
		s += ", until " + w.Until.UTC().Format(time.RFC3339)
	}
	if w.Reason != "" {
		s += " (" + job.Printable(w.Reason) + ")"
	}
	return s
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

var slackIcons = map[config.Event]string{
	config.EventStarted:     ":rocket:",
	config.EventSuccess:     ":white_check_mark:",
	config.EventFailure:     ":x:",
	config.EventInterrupted: ":warning:",
	config.EventSuperseded:  ":fast_forward:",
	config.EventWaiting:     ":hourglass:",
}

// slackText is the message for Slack-compatible incoming webhooks: an
// icon, the summary with Slack's three control characters escaped, and a
// link to the job.
func slackText(j *job.Job, event config.Event, link string) string {
	text := slackIcons[event] + " " + slackEscaper.Replace(summary(j, event))
	if link != "" {
		text += fmt.Sprintf(" <%s|job %d>", link, j.ID)
	}
	return text
}

// Payload is the body of a generic JSON notification.
type Payload struct {
	// Event is started, success, failure, interrupted, superseded or
	// waiting.
	Event config.Event `json:"event"`
	// Text is a one-line summary for people.
	Text string `json:"text"`
	// URL links to the job; empty without public_url.
	URL string `json:"url,omitempty"`
	// Job is the job record, as GET /api/jobs/{id} shows it.
	Job *job.Job `json:"job"`
}

// statusDescription is the commit status text; hosts cap it (GitHub at
// 140 characters), so it is cut with an ellipsis.
func statusDescription(j *job.Job, event config.Event) string {
	var s string
	switch event {
	case config.EventStarted:
		s = fmt.Sprintf("#%d deploying %s", j.Number, j.Branch)
	case config.EventSuccess:
		s = fmt.Sprintf("#%d deployed in %s", j.Number, took(j))
	default:
		s = fmt.Sprintf("#%d %s: %s", j.Number, j.Status, job.Printable(j.Error))
	}
	const max = 140
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}
