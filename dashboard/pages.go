package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// branchHistory is how many of a project's recent jobs are read to find
// the branches it builds beside its literal deploy targets.
const branchHistory = 200

type projectRow struct {
	Project string
	Branch  string
	Last    *job.Job
	// Deploys is set when a deploy target matches the branch.
	Deploys bool
}

type projectsData struct {
	Rows []projectRow
	Now  time.Time
}

// projects lists each project and branch with its last job and a "Build
// now" button. Branches are the literal deploy targets' and those of the
// project's recent jobs.
func (h *Handler) projects(w http.ResponseWriter, r *http.Request, v view) error {
	ctx := r.Context()
	d := projectsData{Now: h.d.Now()}
	for i := range h.d.Config.Projects {
		p := &h.d.Config.Projects[i]
		var branches []string
		for _, t := range p.Deploy {
			if t.Branch.Literal() && !slices.Contains(branches, t.Branch.String()) {
				branches = append(branches, t.Branch.String())
			}
		}
		recent, err := h.d.Jobs.List(ctx, store.Filter{Project: p.Name, Limit: branchHistory})
		if err != nil {
			return fmt.Errorf("list jobs of %s: %w", p.Name, err)
		}
		last := map[string]*job.Job{}
		for _, j := range recent {
			if j.Branch == "" || (j.Action != job.ActionBuild && j.Action != job.ActionDeploy) {
				continue
			}
			if last[j.Branch] == nil {
				last[j.Branch] = j
			}
			if !slices.Contains(branches, j.Branch) {
				branches = append(branches, j.Branch)
			}
		}
		for _, b := range branches {
			if last[b] == nil { // older than the recent jobs read
				js, err := h.d.Jobs.List(ctx, store.Filter{Project: p.Name, Branch: b, Limit: 1})
				if err != nil {
					return fmt.Errorf("list jobs of %s %s: %w", p.Name, b, err)
				}
				if len(js) > 0 {
					last[b] = js[0]
				}
			}
			_, deploys := p.DeployFor(b)
			d.Rows = append(d.Rows, projectRow{Project: p.Name, Branch: b, Last: last[b], Deploys: deploys})
		}
		if len(branches) == 0 {
			d.Rows = append(d.Rows, projectRow{Project: p.Name})
		}
	}
	v.Title, v.Nav, v.Data = "Projects", "projects", d
	return h.render(w, "projects", v)
}

// services is the services page; its script fills it from the API
// (GET /api/services and each service's /tags), which asks Swarm.
func (h *Handler) services(w http.ResponseWriter, r *http.Request, v view) error {
	v.Title, v.Nav, v.Data = "Services", "services", h.serviceNames(r.Context())
	return h.render(w, "services", v)
}

// prunePage shows the registry prune's dry-run plan (its script asks
// POST /api/prune with dry_run) and a "Prune now" button; admin only.
func (h *Handler) prunePage(w http.ResponseWriter, _ *http.Request, v view) error {
	v.Title, v.Nav = "Prune", "prune"
	if !v.Can(string(config.ScopeAdmin)) {
		w.WriteHeader(http.StatusForbidden)
	}
	return h.render(w, "prune", v)
}

// stackListTimeout bounds the listing of stacks' services for a page: a
// local engine answers in milliseconds, and a stalled one must not hold
// the page.
const stackListTimeout = 5 * time.Second

// serviceNames are the managed services, each once, in config order, a
// stack's as they run now: the ones GET /api/services lists. A stack
// whose services cannot be listed is logged and left out; the services
// page's call to the API says so on the page.
func (h *Handler) serviceNames(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, stackListTimeout)
	defer cancel()
	names, err := job.ManagedServices(ctx, h.d.Config, h.d.Stacks)
	if err != nil {
		h.d.Log.Warn().Err(err).Msg("dashboard: some stacks' services could not be listed")
	}
	return names
}
