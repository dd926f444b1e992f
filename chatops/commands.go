package chatops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

// Actions are what chat commands do, as the user who asked (who is
// recorded on the job). The server implements them in process, through
// the same code paths as its API; each is safe for concurrent use.
type Actions interface {
	Rollback(ctx context.Context, who, service, tag string) (int64, error)
	Deploy(ctx context.Context, who, project, branch, tag string) (int64, error)
	Redeploy(ctx context.Context, who, service string) (int64, error)
	Scale(ctx context.Context, who, service string, replicas uint64) (int64, error)
	Promote(ctx context.Context, who, project, from, to string) (int64, error)
	Approve(ctx context.Context, who string, id int64) error
	Reject(ctx context.Context, who string, id int64) error
	Freeze(ctx context.Context, who, target, until, reason string) error
	// Job reads one job; Jobs the newest n.
	Job(ctx context.Context, id int64) (*job.Job, error)
	Jobs(ctx context.Context, n int) ([]*job.Job, error)
	// Wait returns the job once it has ended, or as it is when ctx ends,
	// following it for chat user who; it may refuse at once when too
	// many jobs are followed already.
	Wait(ctx context.Context, who string, id int64) (*job.Job, error)
	// AwaitsApproval reports whether j waits for an approval, so that
	// its status comes with Approve and Reject buttons.
	AwaitsApproval(j *job.Job) bool
}

// reply is a command's answer: text, and the job to follow when it
// started or continued one.
type reply struct {
	text string
	job  int64
	// blocks, when set, are the message's Block Kit layout (buttons).
	blocks *slack.Blocks
}

// command is one chat command. It mirrors the CLI's command of the same
// name: the same arguments, given in order; a CLI flag (--to TAG) may be
// written before its value too.
type command struct {
	name    string
	args    []string       // required, then optional ones in brackets
	flags   map[string]int // CLI flag names, and the argument each stands for
	scope   config.Scope
	summary string
	run     func(ctx context.Context, a Actions, who string, args []string) (reply, error)
}

// started is the reply of a command that started job id.
func started(what string, id int64, err error) (reply, error) {
	if err != nil {
		return reply{}, err
	}
	return reply{text: fmt.Sprintf("Job %d started: %s.", id, what), job: id}, nil
}

// arg is the i-th argument, or "" when it was left out.
func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

func jobID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: %q is not a job number", errUsage, s)
	}
	return id, nil
}

// errUsage is a command typed wrong; the reply says how to type it.
var errUsage = errors.New("usage")

// commands are the chat commands, in the order help lists them.
var commands = []command{
	{name: "status", args: []string{"[JOB]"}, scope: config.ScopeRead, summary: "the newest jobs, or one job",
		run: func(ctx context.Context, a Actions, _ string, args []string) (reply, error) {
			if len(args) == 0 {
				jobs, err := a.Jobs(ctx, 5)
				if err != nil {
					return reply{}, err
				}
				lines := make([]string, len(jobs))
				for i, j := range jobs {
					lines[i] = jobLine(j)
				}
				if len(lines) == 0 {
					return reply{text: "No jobs yet."}, nil
				}
				return reply{text: strings.Join(lines, "\n")}, nil
			}
			id, err := jobID(args[0])
			if err != nil {
				return reply{}, err
			}
			j, err := a.Job(ctx, id)
			if err != nil {
				return reply{}, err
			}
			r := reply{text: jobText(j)}
			if a.AwaitsApproval(j) {
				b := ApprovalBlocks(r.text, j.ID)
				r.blocks = &b
			}
			return r, nil
		}},
	{name: "rollback", args: []string{"SERVICE", "[TAG]"}, flags: map[string]int{"to": 1}, scope: config.ScopeRollback, summary: "roll a service back to a tag, or to Swarm's previous spec",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			id, err := a.Rollback(ctx, who, args[0], arg(args, 1))
			what := "rollback of " + args[0]
			if t := arg(args, 1); t != "" {
				what += " to " + t
			}
			return started(what, id, err)
		}},
	{name: "deploy", args: []string{"PROJECT", "BRANCH", "[TAG]"}, flags: map[string]int{"branch": 1, "tag": 2}, scope: config.ScopeDeploy, summary: "build a branch's head and deploy it, or deploy one of its tags",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			id, err := a.Deploy(ctx, who, args[0], args[1], arg(args, 2))
			return started(fmt.Sprintf("deploy of %s %s %s", args[0], args[1], arg(args, 2)), id, err)
		}},
	{name: "redeploy", args: []string{"SERVICE"}, scope: config.ScopeDeploy, summary: "rolling restart on the same digest",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			id, err := a.Redeploy(ctx, who, args[0])
			return started("redeploy of "+args[0], id, err)
		}},
	{name: "scale", args: []string{"SERVICE", "REPLICAS"}, scope: config.ScopeScale, summary: "set a service's replica count",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			n, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return reply{}, fmt.Errorf("%w: replicas %q is not a number", errUsage, args[1])
			}
			id, err := a.Scale(ctx, who, args[0], n)
			return started(fmt.Sprintf("scale of %s to %d", args[0], n), id, err)
		}},
	{name: "promote", args: []string{"PROJECT", "FROM", "TO"}, scope: config.ScopeDeploy, summary: "deploy what runs in one environment to another",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			id, err := a.Promote(ctx, who, args[0], args[1], args[2])
			return started(fmt.Sprintf("promotion of %s from %s to %s", args[0], args[1], args[2]), id, err)
		}},
	{name: "approve", args: []string{"JOB"}, scope: config.ScopeApprove, summary: "let a job waiting for approval go on",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			id, err := jobID(args[0])
			if err == nil {
				err = a.Approve(ctx, who, id)
			}
			if err != nil {
				return reply{}, err
			}
			return reply{text: fmt.Sprintf("Job %d approved by %s.", id, who), job: id}, nil
		}},
	{name: "reject", args: []string{"JOB"}, scope: config.ScopeApprove, summary: "end a job waiting for approval",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			id, err := jobID(args[0])
			if err == nil {
				err = a.Reject(ctx, who, id)
			}
			if err != nil {
				return reply{}, err
			}
			return reply{text: fmt.Sprintf("Job %d rejected by %s.", id, who)}, nil
		}},
	{name: "freeze", args: []string{"TARGET", "UNTIL", "[REASON...]"}, flags: map[string]int{"until": 1, "reason": 2}, scope: config.ScopeOverride, summary: "stop deploys to a target until a time (RFC 3339)",
		run: func(ctx context.Context, a Actions, who string, args []string) (reply, error) {
			reason := strings.Join(args[min(2, len(args)):], " ")
			if err := a.Freeze(ctx, who, args[0], args[1], reason); err != nil {
				return reply{}, err
			}
			return reply{text: fmt.Sprintf("Deploys to %s frozen until %s.", args[0], args[1])}, nil
		}},
}

func lookup(name string) (*command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return nil, false
	}
	return &commands[i], true
}

func (c *command) usage() string { return strings.TrimSpace(c.name + " " + strings.Join(c.args, " ")) }

// bind checks words (after the command's name) against c's arguments.
// A CLI-style flag ("--to TAG", "-branch main") is read as the argument
// it stands for, so a line copied from the CLI works.
func (c *command) bind(words []string) ([]string, error) {
	var positional []string
	named := map[int]string{}
	last := -1
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || len(w) == 1 {
			positional = append(positional, w)
			continue
		}
		slot, ok := c.flags[strings.TrimLeft(w, "-")]
		if !ok || i+1 == len(words) {
			return nil, fmt.Errorf("%w: %q is not a flag of %s; %s", errUsage, w, c.name, c.usage())
		}
		if _, dup := named[slot]; dup {
			return nil, fmt.Errorf("%w: %s given twice", errUsage, w)
		}
		named[slot] = words[i+1]
		last = max(last, slot)
		i++
	}
	var args []string
	for slot := 0; slot <= last || len(positional) > 0; slot++ {
		if v, ok := named[slot]; ok {
			args = append(args, v)
		} else if len(positional) > 0 {
			args, positional = append(args, positional[0]), positional[1:]
		} else {
			args = append(args, "")
		}
	}
	required := slices.IndexFunc(c.args, func(a string) bool { return strings.HasPrefix(a, "[") })
	if required < 0 {
		required = len(c.args)
	}
	variadic := len(c.args) > 0 && strings.HasSuffix(c.args[len(c.args)-1], "...]")
	if len(args) < required || slices.Contains(args[:required], "") || (len(args) > len(c.args) && !variadic) {
		return nil, fmt.Errorf("%w: %s", errUsage, c.usage())
	}
	return args, nil
}

// help lists the commands a user may run.
func help(u config.SlackUser) string {
	var b strings.Builder
	b.WriteString("Commands:\n")
	for _, c := range commands {
		if u.Has(c.scope) {
			fmt.Fprintf(&b, "• `%s`: %s\n", c.usage(), c.summary)
		}
	}
	b.WriteString("• `help`: this list")
	return b.String()
}
