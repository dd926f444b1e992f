package chatops

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/swarmhook/swarmhook/job"
)

// jobLine is one job in a line: "#42 shop build main succeeded (ci)".
func jobLine(j *job.Job) string {
	var what []string
	for _, s := range []string{j.Service, j.Branch, j.Tag} {
		if s != "" {
			what = append(what, s)
		}
	}
	line := fmt.Sprintf("Job %d (%s #%d): %s %s, %s", j.ID, j.Project, j.Number, j.Action, strings.Join(what, " "), j.Status)
	if j.Who != "" {
		line += ", by " + j.Who
	}
	return line
}

// jobText is a job's line, its services' outcomes and its error.
func jobText(j *job.Job) string {
	lines := []string{jobLine(j)}
	if j.Stage != nil {
		lines = append(lines, "now: "+j.Stage.Name)
	}
	for _, s := range j.Services {
		l := fmt.Sprintf("• %s: %s", s.Service, s.Outcome)
		if s.Message != "" {
			l += " (" + s.Message + ")"
		}
		lines = append(lines, l)
	}
	if j.Error != "" {
		lines = append(lines, "error: "+j.Error)
	}
	return strings.Join(lines, "\n")
}

// Message types of Slack's answers.
const (
	ephemeral = slack.ResponseTypeEphemeral
	inChannel = slack.ResponseTypeInChannel
)

func message(kind, text string) *slack.WebhookMessage {
	return &slack.WebhookMessage{ResponseType: kind, Text: text}
}

// ApprovalBlocks are a message asking for an approval of job id, with
// Approve and Reject buttons. A press comes back to POST /chat/slack as
// a block action whose action_id is the command and value the job, and
// runs as "/deploy approve ID" typed by the presser would: the same
// user mapping and scope.
func ApprovalBlocks(text string, id int64) slack.Blocks {
	v := fmt.Sprint(id)
	approve := slack.NewButtonBlockElement("approve", v, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)).WithStyle(slack.StylePrimary)
	reject := slack.NewButtonBlockElement("reject", v, slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false)).WithStyle(slack.StyleDanger)
	return slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, text, false, false), nil, nil),
		slack.NewActionBlock("swarmhook-approval-"+v, approve, reject),
	}}
}
