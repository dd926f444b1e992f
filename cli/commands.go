package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/swarmhook/swarmhook/client"
)

// command is one CLI command. Exactly one of show and action is set: a
// show reads and prints; an action starts or continues a job and
// returns its ID, and takes -wait.
type command struct {
	name    string
	args    []string // positional arguments, all required
	flags   []flagSpec
	summary string
	show    func(ctx context.Context, c *client.Client, in *input, out *output) error
	action  func(ctx context.Context, c *client.Client, in *input) (int64, error)
	// did says what an action did to the job, for its one-line answer.
	did string
}

// flagSpec is a flag of one command.
type flagSpec struct {
	name, help string
	bool       bool
	required   bool
}

func (cmd *command) usage() string {
	var b strings.Builder
	b.WriteString(strings.Join(cmd.args, " "))
	for _, f := range cmd.flags {
		switch {
		case f.bool:
			fmt.Fprintf(&b, " [-%s]", f.name)
		case f.required:
			fmt.Fprintf(&b, " -%s %s", f.name, strings.ToUpper(f.name))
		default:
			fmt.Fprintf(&b, " [-%s %s]", f.name, strings.ToUpper(f.name))
		}
	}
	if cmd.action != nil {
		b.WriteString(" [-wait]")
	}
	b.WriteString(" [-o json]")
	return strings.TrimSpace(b.String())
}

// commands are the CLI's commands, in the order help lists them. Each
// is one API call: adding an endpoint's command is one entry here.
var commands = []command{
	{
		name: "jobs", summary: "list jobs, newest first",
		flags: []flagSpec{{name: "project", help: "only this project's"}, {name: "branch", help: "only this branch's"},
			{name: "status", help: "only jobs in this status"}, {name: "service", help: "only jobs that touched this service"},
			{name: "limit", help: "at most this many (default: the server's)"}},
		show: func(ctx context.Context, c *client.Client, in *input, out *output) error {
			f := client.JobFilter{Project: in.flag("project"), Branch: in.flag("branch"), Status: in.flag("status"), Service: in.flag("service")}
			if l := in.flag("limit"); l != "" {
				n, err := strconv.Atoi(l)
				if err != nil || n < 1 {
					return fmt.Errorf("-limit %q: want a positive number", l)
				}
				f.Limit = n
			}
			jobs, err := c.Jobs(ctx, f)
			if err != nil {
				return err
			}
			return out.jobs(jobs)
		},
	},
	{
		name: "job", args: []string{"JOB"}, summary: "show one job: status, images, services, error",
		show: func(ctx context.Context, c *client.Client, in *input, out *output) error {
			id, err := in.id(0)
			if err != nil {
				return err
			}
			j, err := c.Job(ctx, id)
			if err != nil {
				return err
			}
			return out.job(j)
		},
	},
	{
		name: "log", args: []string{"JOB"}, summary: "print a job's log; -f follows it until the job ends",
		flags: []flagSpec{{name: "f", help: "follow the log until the job ends", bool: true}},
		show: func(ctx context.Context, c *client.Client, in *input, out *output) error {
			id, err := in.id(0)
			if err != nil {
				return err
			}
			return c.Log(ctx, id, in.on("f"), out.w)
		},
	},
	{
		name: "services", summary: "every managed service: tag, replicas, update state",
		show: func(ctx context.Context, c *client.Client, _ *input, out *output) error {
			svcs, err := c.Services(ctx)
			if err != nil {
				return err
			}
			return out.services(svcs)
		},
	},
	{
		name: "tags", args: []string{"SERVICE"}, summary: "a service's rollback candidates, newest first",
		show: func(ctx context.Context, c *client.Client, in *input, out *output) error {
			t, err := c.Tags(ctx, in.args[0])
			if err != nil {
				return err
			}
			return out.tags(t)
		},
	},
	{
		name: "rollback", args: []string{"SERVICE"}, summary: "roll a service back to a tag, or to Swarm's previous spec",
		flags: []flagSpec{{name: "to", help: "the tag to roll back to (see swarmhook tags); none: Swarm's previous spec"}},
		did:   "started",
		action: func(ctx context.Context, c *client.Client, in *input) (int64, error) {
			return c.Rollback(ctx, in.args[0], in.flag("to"))
		},
	},
	{
		name: "deploy", args: []string{"PROJECT"}, summary: "build a branch's head and deploy it, or deploy an existing tag",
		flags: []flagSpec{{name: "branch", help: "the branch", required: true}, {name: "tag", help: "deploy this tag of the branch, no build"}},
		did:   "started",
		action: func(ctx context.Context, c *client.Client, in *input) (int64, error) {
			return c.Deploy(ctx, in.args[0], in.flag("branch"), in.flag("tag"))
		},
	},
	{
		name: "redeploy", args: []string{"SERVICE"}, summary: "rolling restart of a service on the same digest",
		did: "started",
		action: func(ctx context.Context, c *client.Client, in *input) (int64, error) {
			return c.Redeploy(ctx, in.args[0])
		},
	},
	{
		name: "scale", args: []string{"SERVICE", "REPLICAS"}, summary: "set a service's replica count",
		did: "started",
		action: func(ctx context.Context, c *client.Client, in *input) (int64, error) {
			n, err := strconv.ParseUint(in.args[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("replicas %q: want a number", in.args[1])
			}
			return c.Scale(ctx, in.args[0], n)
		},
	},
	{
		name: "promote", args: []string{"PROJECT", "FROM", "TO"}, summary: "deploy the digests running in one environment to another",
		did: "started",
		action: func(ctx context.Context, c *client.Client, in *input) (int64, error) {
			return c.Promote(ctx, in.args[0], in.args[1], in.args[2])
		},
	},
	{
		name: "approve", args: []string{"JOB"}, summary: "let a job waiting for approval go on",
		did: "approved",
		action: func(ctx context.Context, c *client.Client, in *input) (int64, error) {
			id, err := in.id(0)
			if err != nil {
				return 0, err
			}
			return id, c.Approve(ctx, id)
		},
	},
	{
		name: "reject", args: []string{"JOB"}, summary: "end a job waiting for approval",
		did: "rejected",
		action: func(ctx context.Context, c *client.Client, in *input) (int64, error) {
			id, err := in.id(0)
			if err != nil {
				return 0, err
			}
			return id, c.Reject(ctx, id)
		},
	},
	{
		name: "freeze", args: []string{"TARGET"}, summary: "stop deploys to a target until a time",
		flags: []flagSpec{{name: "until", help: "when deploys may go on again (RFC 3339)", required: true}, {name: "reason", help: "why, for the job records"}},
		show: func(ctx context.Context, c *client.Client, in *input, out *output) error {
			ans, err := c.FreezeDeploys(ctx, client.Freeze{Target: in.args[0], Until: in.flag("until"), Reason: in.flag("reason")})
			if err != nil {
				return err
			}
			return out.answer(ans)
		},
	},
}

func lookup(name string) (*command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return nil, false
	}
	return &commands[i], true
}

// Usage lists the commands.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "usage: swarmhook COMMAND [ARGS] [FLAGS]\n\nServer commands:\n  serve -config FILE            run the server\n  prune -config FILE [-dry-run] prune the registry with no server running\n\nClient commands (server from -url or $%s, token from $%s or -token-file):\n", EnvURL, EnvToken)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n            %s\n", c.name, c.usage(), c.summary)
	}
	fmt.Fprintf(w, "\nExit codes: 0 done (with -wait: the job succeeded), 1 failed, 2 bad command line, 3 the job did not succeed.\n")
}
