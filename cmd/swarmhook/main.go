// Command swarmhook is a deploy webhook service for Docker Swarm: a Git
// push comes in, images are built and pushed to a private registry, and
// Swarm services are rolled onto them one after another.
//
// Usage:
//
//	swarmhook serve -config FILE [-log-format json|console] [-log-level info]
//	swarmhook prune -config FILE [--dry-run]
//	swarmhook jobs | job | log | services | tags | rollback | deploy | ... (package cli)
//
// This file only wires packages together; every behaviour lives in the
// package named for it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/cli"
	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/dashboard"
	"github.com/swarmhook/swarmhook/engines"
	"github.com/swarmhook/swarmhook/gate"
	"github.com/swarmhook/swarmhook/internal/dirlock"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/metrics"
	"github.com/swarmhook/swarmhook/notify"
	"github.com/swarmhook/swarmhook/prune"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/server"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/stack"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/updater"
	"github.com/swarmhook/swarmhook/webhook"
)

// shutdownGrace is how long running jobs get to finish after SIGTERM.
const shutdownGrace = 30 * time.Second

// notifyDrain is how long queued notifications get after the jobs have
// stopped: enough for the final statuses, short enough for a restart.
const notifyDrain = 5 * time.Second

func main() {
	if len(os.Args) > 1 && cli.Has(os.Args[1]) {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := cli.Run(ctx, os.Args[1:], cli.IO{Stdout: os.Stdout, Stderr: os.Stderr})
		stop()
		os.Exit(code)
	}
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "swarmhook:", err)
		os.Exit(1)
	}
}

const usage = "usage: swarmhook serve -config FILE | swarmhook prune -config FILE [--dry-run] | swarmhook plan -config FILE -project P -branch B | swarmhook help (the client commands)"

func run(args []string, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "prune":
		return pruneCmd(args[1:], os.Stdout, stderr)
	case "plan":
		return planCmd(args[1:], os.Stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
}

// pruneCmd runs one prune (or with --dry-run prints its plan) and prints
// the report as JSON.
func pruneCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/swarmhook/config.yaml", "configuration file")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted and why the rest stays; delete nothing")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, "console", *logLevel)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Str("config", *cfgPath).Int("line", w.Line).Str("field", w.Field).Msg(w.Message)
	}

	// The store is the server's while one runs: prune through its API.
	lock, err := lockDataDir(cfg)
	if err != nil {
		return fmt.Errorf("%w; with swarmhook serve running, prune through its API (POST /api/prune)", err)
	}
	defer lock.Release()
	docker, err := dockerClient(cfg)
	if err != nil {
		return err
	}
	defer docker.Close()
	logs, jobs, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer jobs.Close()
	creds, err := credentials(cfg)
	if err != nil {
		return err
	}
	// Not started: a prune runs on this goroutine (Runner.Do).
	runner := job.NewRunner(cfg, job.Deps{Store: jobs, Logs: logs, Log: log})
	p := prune.New(cfg, prune.Deps{
		Registry: registry.New(creds, cfg.Registry.Insecure, registry.WithLog(log)),
		Swarm:    updater.NewInventory(docker),
		Store:    jobs, Jobs: runner, Log: log,
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var rep *prune.Report
	if *dryRun {
		rep, err = p.Plan(ctx)
	} else {
		rep, err = p.Run(ctx, job.TriggerManual, "cli")
	}
	if rep != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(rep); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// planCmd prints, as JSON, the plan of the stack of a branch's head;
// it changes nothing. It fetches into a mirror of its own, so it never
// shares one with a running server.
func planCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/swarmhook/config.yaml", "configuration file")
	project := fs.String("project", "", "project whose deploy target deploys a stack")
	branch := fs.String("branch", "", "branch whose head to plan")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := webhook.ValidRefName(*branch); err != nil {
		return fmt.Errorf("-branch: %w", err)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, "console", "warn")
	if err != nil {
		return err
	}
	docker, err := dockerClient(cfg)
	if err != nil {
		return err
	}
	defer docker.Close()
	creds, err := credentials(cfg)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "swarmhook-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mirrors, err := source.NewMirrors(filepath.Join(tmp, "mirrors"))
	if err != nil {
		return err
	}
	runner := job.NewRunner(cfg, job.Deps{Source: mirrors, Stacks: docker, Log: log,
		Registry: registry.New(creds, cfg.Registry.Insecure, registry.WithLog(log))})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	plan, err := runner.PlanBranch(ctx, *project, *branch)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(plan)
}

// credentials are the registry's from the config, or else from the
// usual ~/.docker/config.json (credential helpers included).
func credentials(cfg *config.Config) (registry.Credentials, error) {
	return registry.DockerConfigCredentials(context.Background(),
		registry.Credentials{Host: cfg.Registry.Host, Username: cfg.Registry.Username, Password: cfg.Registry.Password})
}

// engineProbeInterval is how often every build engine is pinged, so one
// marked down comes back within it once it answers.
const engineProbeInterval = 15 * time.Second

// openBuilders opens a client of each of docker.builders and pools them;
// closeAll closes the clients.
func openBuilders(cfg *config.Config, auth string, m *metrics.Metrics, log zerolog.Logger) (*engines.Pool, func(), error) {
	var es []engines.Engine
	var clients []*client.Client
	closeAll := func() {
		for _, c := range clients {
			c.Close()
		}
	}
	for _, b := range cfg.Docker.Builders {
		c, err := engines.Client(b)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		clients = append(clients, c)
		e := builder.NewEngine(c, auth, builderKind(c, cfg, log))
		es = append(es, engines.Engine{Name: b.Name, Labels: b.Labels, Weight: b.Weight,
			Builder: m.Builder(e), Pruner: e,
			Ping: func(ctx context.Context) error { _, err := c.Ping(ctx); return err }})
	}
	return engines.New(es, nil), closeAll, nil
}

func dockerClient(cfg *config.Config) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Docker.Host != "" {
		opts = append(opts, client.WithHost(cfg.Docker.Host))
	}
	docker, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return docker, nil
}

// builderKind is docker.builder, or when it is not set the builder the
// engine has (builder.Detect); BuildKit if the engine does not answer yet.
func builderKind(docker *client.Client, cfg *config.Config, log zerolog.Logger) builder.Kind {
	if cfg.Docker.Builder != "" {
		return builder.Kind(cfg.Docker.Builder)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kind, err := builder.Detect(ctx, docker)
	if err != nil {
		log.Warn().Err(err).Msg("docker.builder not set and the engine did not answer: building with BuildKit")
		return builder.BuildKit
	}
	log.Info().Str("builder", string(kind)).Msg("docker.builder not set: using the engine's")
	return kind
}

// lockDataDir makes this process the only one using the data dir, for as
// long as it lives: a second one fails at once naming the holder's PID.
// Take it before anything under the data dir is read or written.
func lockDataDir(cfg *config.Config) (*dirlock.Lock, error) {
	lock, err := dirlock.Acquire(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("lock data_dir: %w", err)
	}
	return lock, nil
}

// openStore opens the job logs and the job store under the data dir,
// which the caller has locked (lockDataDir).
func openStore(cfg *config.Config) (*store.LogDir, *store.SQLite, error) {
	logs, err := store.NewLogDir(filepath.Join(cfg.DataDir, "logs"))
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	jobs, err := store.OpenSQLite(context.Background(), filepath.Join(cfg.DataDir, "swarmhook.db"))
	if err != nil {
		return nil, nil, err
	}
	return logs, jobs, nil
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/swarmhook/config.yaml", "configuration file")
	logFormat := fs.String("log-format", "json", "log format: json or console")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Str("config", *cfgPath).Int("line", w.Line).Str("field", w.Field).Msg(w.Message)
	}
	if err := job.CheckEnvFiles(cfg); err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}

	// One process per data_dir, decided before anything in it is read or
	// written; then the port, before any job is recovered.
	lock, err := lockDataDir(cfg)
	if err != nil {
		return err
	}
	defer lock.Release()
	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	defer listener.Close()

	docker, err := dockerClient(cfg)
	if err != nil {
		return err
	}
	defer docker.Close()

	creds, err := credentials(cfg)
	if err != nil {
		return err
	}
	mirrors, err := source.NewMirrors(filepath.Join(cfg.DataDir, "mirrors"))
	if err != nil {
		return err
	}
	logs, jobs, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer jobs.Close()
	reg := registry.New(creds, cfg.Registry.Insecure, registry.WithLog(log),
		registry.WithRetries(*cfg.Registry.Retries, cfg.Registry.RetryBackoff.Duration))
	swarm := updater.New(docker, creds.EngineAuth())
	m := metrics.New()
	notifier := notify.New(cfg, notify.Options{Recorder: m, Log: log.With().Str("component", "notify").Logger()})
	engine := builder.NewEngine(docker, creds.EngineAuth(), builderKind(docker, cfg, log))
	inventory := updater.NewInventory(docker)
	freezes, err := gate.OpenFreezes(filepath.Join(cfg.DataDir, "freezes.json"))
	if err != nil {
		return err
	}
	held := gate.New(cfg, gate.Options{Freezes: freezes, Log: log.With().Str("component", "gate").Logger()})
	deps := job.Deps{
		Store:     jobs,
		Logs:      logs,
		Source:    mirrors,
		Builder:   m.Builder(engine),
		Pruner:    engine,
		Registry:  m.Tagger(reg),
		Updater:   m.Updater(swarm),
		Services:  inventory,
		Stacks:    docker,
		Rollout:   m.Rollout(swarm),
		Log:       log,
		Observers: []job.Observer{m, notifier},
		Gate:      held,
	}
	ready := []server.Check{
		{Name: "engine", Probe: func(ctx context.Context) error { _, err := docker.Ping(ctx); return err }},
		{Name: "registry", Probe: reg.Ping},
		{Name: "store", Probe: jobs.Writable},
	}
	var buildEngines server.EngineStates
	var pool *engines.Pool
	if len(cfg.Docker.Builders) > 0 {
		var closeAll func()
		pool, closeAll, err = openBuilders(cfg, creds.EngineAuth(), m, log)
		if err != nil {
			return err
		}
		defer closeAll()
		deps.Builder, deps.Pruner, deps.Engines, buildEngines = nil, nil, pool, pool
		ready = append(ready, server.Check{Name: "build engines", Probe: pool.Ready})
		m.Engines(pool.States)
	}
	runner := job.NewRunner(cfg, deps)
	held.Attach(runner)
	m.QueueDepth(runner.QueueDepth)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	// Not runCtx: the interrupted jobs' statuses must still go out after it is cancelled.
	notifier.Start(context.WithoutCancel(ctx))
	if pool != nil {
		go pool.Watch(ctx, engineProbeInterval)
	}
	runner.Start(runCtx)
	go store.KeepHistory(ctx, jobs, logs, cfg.Jobs.Keep.Duration, time.Hour, log)
	pruner := prune.New(cfg, prune.Deps{Registry: reg, Swarm: inventory, Store: jobs, Jobs: runner, Log: log})
	if cfg.Prune.Schedule != "" {
		go pruner.Schedule(ctx, cfg.Prune.Schedule)
	}
	if err := runner.Resume(ctx); err != nil {
		return err
	}

	sessions := dashboard.NewSessions(cfg.Dashboard.SessionTTL.Duration, nil)
	stacks := stack.NewInventory(docker)
	dash, err := dashboard.New(dashboard.Deps{Config: cfg, Jobs: jobs, Logs: logs, Sessions: sessions, Stacks: stacks, Log: log})
	if err != nil {
		return err
	}
	httpServer := server.New(server.Deps{
		Sessions: sessions, Dashboard: dash,
		Config: cfg, Jobs: runner, Store: jobs, Logs: logs,
		Swarm: swarm, Stacks: stacks, Registry: reg, Heads: runner, Plans: runner, Log: log,
		Deliveries: runner, Prune: pruner, Metrics: m.Handler(), DeliveryCounter: m, Gate: held,
		Ready:   ready,
		Engines: buildEngines,
		Warn: []server.Check{
			{Name: "services", Probe: func(ctx context.Context) error { return job.CheckServices(ctx, cfg, inventory) }},
		},
	}).HTTPServer()
	job.WarnMissingServices(ctx, cfg, inventory, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(listener) }()
	log.Info().Str("listen", listener.Addr().String()).Int("projects", len(cfg.Projects)).Msg("swarmhook started")

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down: no new jobs, waiting for running ones")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	httpServer.Shutdown(shutdownCtx)
	if err := runner.Shutdown(shutdownCtx); err != nil {
		log.Warn().Err(err).Msg("cancelling jobs still running")
		cancelJobs()
	}
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), notifyDrain)
	defer cancelDrain()
	if err := notifier.Shutdown(drainCtx); err != nil {
		log.Warn().Err(err).Msg("notifications dropped at shutdown")
	}
	return nil
}

func loadConfig(path string) (*config.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	cfg, err := config.Load(f, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("log level %q: %w", level, err)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	default:
		return zerolog.Logger{}, fmt.Errorf("log format %q: want json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
