package job

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
)

// serviceCheckTimeout bounds the start-up check of the deploy targets'
// services: one list call, which an engine answers in milliseconds; a
// slow engine must not hold the start for long, and /readyz checks again.
const serviceCheckTimeout = 10 * time.Second

// ServiceInventory says which named services the swarm has not got;
// *updater.Inventory satisfies it. Safe for concurrent use.
type ServiceInventory interface {
	Missing(ctx context.Context, names []string) ([]string, error)
}

// MissingServicesError names the services deploy targets list that do
// not exist in the swarm.
type MissingServicesError struct {
	Services []string
}

func (e *MissingServicesError) Error() string {
	return "deploy targets name services that do not exist: " + strings.Join(e.Services, ", ")
}

// CheckServices returns a *MissingServicesError naming the services that
// cfg's deploy targets list and the swarm has not got, or nil when it
// has them all. A deploy to a missing service fails naming it; the rest
// of swarmhook works as before, so this is a warning, not an error.
func CheckServices(ctx context.Context, cfg *config.Config, inv ServiceInventory) error {
	var names []string
	eachService(cfg, func(_ *config.Project, _ *config.Deploy, s config.Service) { names = append(names, s.Name) })
	if len(names) == 0 {
		return nil
	}
	missing, err := inv.Missing(ctx, names)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return &MissingServicesError{Services: missing}
	}
	return nil
}

// WarnMissingServices logs a warning for each deploy target service
// that does not exist in the swarm, naming its project and branch, or
// one saying why it could not check. For start-up.
func WarnMissingServices(ctx context.Context, cfg *config.Config, inv ServiceInventory, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, serviceCheckTimeout)
	defer cancel()
	var missing *MissingServicesError
	if err := CheckServices(ctx, cfg, inv); !errors.As(err, &missing) {
		if err != nil {
			log.Warn().Err(err).Msg("could not check that the deploy targets' services exist")
		}
		return
	}
	eachService(cfg, func(p *config.Project, d *config.Deploy, s config.Service) {
		if slices.Contains(missing.Services, s.Name) {
			log.Warn().Str("project", p.Name).Str("branch", d.Branch.String()).Str("service", s.Name).
				Msg("deploy target names a service that does not exist: deploys to it will fail")
		}
	})
}

// eachService calls fn for every service of every image-only deploy
// target of cfg, in config order.
func eachService(cfg *config.Config, fn func(p *config.Project, d *config.Deploy, s config.Service)) {
	for i := range cfg.Projects {
		p := &cfg.Projects[i]
		for j := range p.Deploy {
			if p.Deploy[j].Stack != nil {
				continue // its services are keys of the stack file, created by the deploy
			}
			for _, s := range p.Deploy[j].Services {
				fn(p, &p.Deploy[j], s)
			}
		}
	}
}

// StackServices says which services run in a stack; *stack.Inventory
// satisfies it. Safe for concurrent use.
type StackServices interface {
	Services(ctx context.Context, stack string) ([]string, error)
}

// ManagedServices names the Swarm services swarmhook manages, each once,
// in config order: an image-only target's as it lists them, a stack
// target's as the swarm runs them in the stack's namespace (sorted), or
// none when stacks is nil. When a stack's services cannot be listed, it
// returns the names it found and an error saying which.
func ManagedServices(ctx context.Context, cfg *config.Config, stacks StackServices) ([]string, error) {
	var names []string
	var errs []error
	add := func(name string) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for i := range cfg.Projects {
		for j := range cfg.Projects[i].Deploy {
			d := &cfg.Projects[i].Deploy[j]
			if d.Stack == nil {
				for _, s := range d.Services {
					add(s.Name)
				}
				continue
			}
			if stacks == nil {
				continue
			}
			running, err := stacks.Services(ctx, d.Stack.Name)
			if err != nil {
				errs = append(errs, err)
			}
			for _, name := range running {
				if d.Manages(name) { // labelled as the stack's and named so
					add(name)
				}
			}
		}
	}
	return names, errors.Join(errs...)
}
