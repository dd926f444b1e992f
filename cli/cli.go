package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/swarmhook/swarmhook/client"
)

// Exit codes.
const (
	// ExitOK: the command did what it was asked; with -wait, the job
	// succeeded.
	ExitOK = 0
	// ExitError: the command failed (the server refused it, or could not
	// be reached).
	ExitError = 1
	// ExitUsage: the command line is wrong.
	ExitUsage = 2
	// ExitJobFailed: with -wait, the job ended but did not succeed
	// (failed, superseded, interrupted, ...).
	ExitJobFailed = 3
)

// Environment variables the CLI reads.
const (
	EnvURL   = "SWARMHOOK_URL"
	EnvToken = "SWARMHOOK_TOKEN"
)

// defaultURL is the server when neither -url nor SWARMHOOK_URL says one:
// swarmhook's default listen address on this machine.
const defaultURL = "http://127.0.0.1:8080"

// IO is what a command reads and writes besides the server.
type IO struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
	// Options are added to the client's (tests set a short poll).
	Options []client.Option
}

// Has reports whether name is a CLI command, for the dispatcher in
// cmd/swarmhook.
func Has(name string) bool {
	_, ok := lookup(name)
	return ok || name == "help"
}

// Run runs the command args[0] with the rest of args and returns the
// process's exit code. Errors are written to io.Stderr.
func Run(ctx context.Context, args []string, o IO) int {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		Usage(o.Stdout)
		return ExitOK
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(o.Stderr, "swarmhook: unknown command %q\n", args[0])
		Usage(o.Stderr)
		return ExitUsage
	}
	in, err := parse(cmd, args[1:], o.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(o.Stderr, "swarmhook %s: %v\nusage: swarmhook %s %s\n", cmd.name, err, cmd.name, cmd.usage())
		return ExitUsage
	}
	c, err := in.client(o)
	if err != nil {
		fmt.Fprintf(o.Stderr, "swarmhook %s: %v\n", cmd.name, err)
		return ExitUsage
	}
	out := &output{w: o.Stdout, json: in.format == "json"}
	code, err := cmd.exec(ctx, c, in, out)
	if err != nil {
		fmt.Fprintf(o.Stderr, "swarmhook %s: %v\n", cmd.name, err)
	}
	return code
}

// exec runs a parsed command: a read prints what it read; an action
// prints the job it started, or with -wait waits for it and exits with
// its outcome.
func (cmd *command) exec(ctx context.Context, c *client.Client, in *input, out *output) (int, error) {
	if cmd.show != nil {
		if err := cmd.show(ctx, c, in, out); err != nil {
			return ExitError, err
		}
		return ExitOK, nil
	}
	id, err := cmd.action(ctx, c, in)
	if err != nil {
		return ExitError, err
	}
	if !in.wait {
		return ExitOK, out.started(id, cmd.did)
	}
	j, err := c.Wait(ctx, id)
	if err != nil {
		return ExitError, err
	}
	if err := out.job(j); err != nil {
		return ExitError, err
	}
	if j.Status != "succeeded" {
		return ExitJobFailed, nil
	}
	return ExitOK, nil
}

// input is a parsed command line.
type input struct {
	args   []string
	flags  map[string]*string
	bools  map[string]*bool
	url    string
	token  string // -token-file's path
	format string
	wait   bool
}

func (in *input) flag(name string) string { return *in.flags[name] }
func (in *input) on(name string) bool     { return *in.bools[name] }

// id reads positional argument i as a job ID.
func (in *input) id(i int) (int64, error) {
	n, err := strconv.ParseInt(in.args[i], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("job %q: want a job number such as 42", in.args[i])
	}
	return n, nil
}

// parse reads cmd's flags and positional arguments. Flags may come
// before, between or after the arguments (swarmhook log 42 -f), as
// people type them; "--" ends the flags.
func parse(cmd *command, args []string, stderr io.Writer) (*input, error) {
	fs := flag.NewFlagSet("swarmhook "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: swarmhook %s %s\n  %s\n", cmd.name, cmd.usage(), cmd.summary)
		fs.PrintDefaults()
	}
	in := &input{flags: map[string]*string{}, bools: map[string]*bool{}}
	fs.StringVar(&in.url, "url", "", "server URL (default $"+EnvURL+", else "+defaultURL+")")
	fs.StringVar(&in.token, "token-file", "", "file holding the API token (default: $"+EnvToken+")")
	fs.StringVar(&in.format, "o", "table", "output: table or json")
	if cmd.action != nil {
		fs.BoolVar(&in.wait, "wait", false, "wait for the job to end; exit 0 if it succeeded, 3 if not")
	}
	for _, f := range cmd.flags {
		if f.bool {
			in.bools[f.name] = fs.Bool(f.name, false, f.help)
		} else {
			in.flags[f.name] = fs.String(f.name, "", f.help)
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			in.args = append(in.args, rest...)
			break
		}
		in.args = append(in.args, rest[0])
		args = rest[1:]
	}
	if len(in.args) != len(cmd.args) {
		return nil, fmt.Errorf("want %d argument(s) (%s), got %d", len(cmd.args), strings.Join(cmd.args, " "), len(in.args))
	}
	for _, f := range cmd.flags {
		if f.required && in.flag(f.name) == "" {
			return nil, fmt.Errorf("-%s is required", f.name)
		}
	}
	if in.format != "table" && in.format != "json" {
		return nil, fmt.Errorf("-o %q: want table or json", in.format)
	}
	return in, nil
}

// client builds the API client from the flags and the environment. The
// token is read from -token-file or $SWARMHOOK_TOKEN, never from a flag
// (a flag's value is in every user's process list).
func (in *input) client(o IO) (*client.Client, error) {
	base := in.url
	if base == "" {
		base = o.Getenv(EnvURL)
	}
	if base == "" {
		base = defaultURL
	}
	token := o.Getenv(EnvToken)
	if in.token != "" {
		b, err := os.ReadFile(in.token)
		if err != nil {
			return nil, fmt.Errorf("read -token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, fmt.Errorf("no API token: set %s, or give -token-file FILE", EnvToken)
	}
	c, err := client.New(base, token, o.Options...)
	if err != nil {
		return nil, err
	}
	if u, _ := url.Parse(base); u != nil && u.Scheme == "http" && !loopback(u.Hostname()) {
		fmt.Fprintf(o.Stderr, "swarmhook: warning: %s is plain HTTP: the token crosses the network unencrypted\n", u.Host)
	}
	return c, nil
}

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeJSON writes v indented, as -o json prints everything.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
