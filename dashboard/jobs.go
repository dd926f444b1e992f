package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/webhook"
)

// jobsPerPage is the jobs page's length: enough to scan, small enough
// that the page stays well under 100 KB (bench/dashboard).
const jobsPerPage = 50

// statuses are the job statuses the filter offers.
var statuses = []job.Status{job.Queued, job.Running, job.Waiting, job.Succeeded, job.Failed, job.Superseded, job.Interrupted, job.Rejected, job.Expired}

type jobsData struct {
	Filter   store.Filter
	Projects []string
	Services []string
	Statuses []job.Status
	Jobs     []*job.Job
	// Older is the query of the next page, empty on the last.
	Older string
	// Live is set on the first page, which updates itself.
	Live bool
	Now  time.Time
}

// jobFilter reads the jobs page's filters, checking each.
func jobFilter(q url.Values) (store.Filter, error) {
	f := store.Filter{Project: q.Get("project"), Branch: q.Get("branch"), Service: q.Get("service"), Status: job.Status(q.Get("status")), Limit: jobsPerPage}
	if f.Branch != "" {
		if err := webhook.ValidRefName(f.Branch); err != nil {
			return f, fmt.Errorf("%w: branch: %w", errBadRequest, err)
		}
	}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return f, fmt.Errorf("%w: status %q is none of %v", errBadRequest, f.Status, statuses)
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, fmt.Errorf("%w: before=%q is not a job id", errBadRequest, v)
		}
		f.Before = n
	}
	return f, nil
}

// jobs is the history, newest first, jobsPerPage at a time. With
// ?rows=1 it answers only the table's rows, which the first page polls
// to show new jobs without a reload.
func (h *Handler) jobs(w http.ResponseWriter, r *http.Request, v view) error {
	q := r.URL.Query()
	f, err := jobFilter(q)
	if err != nil {
		return err
	}
	jobs, err := h.d.Jobs.List(r.Context(), f)
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	d := jobsData{Filter: f, Statuses: statuses, Jobs: jobs, Live: f.Before == 0, Now: h.d.Now()}
	for _, p := range h.d.Config.Projects {
		d.Projects = append(d.Projects, p.Name)
	}
	if len(jobs) == jobsPerPage {
		older := url.Values{}
		for _, k := range []string{"project", "branch", "service", "status"} {
			if q.Get(k) != "" {
				older.Set(k, q.Get(k))
			}
		}
		older.Set("before", strconv.FormatInt(jobs[len(jobs)-1].ID, 10))
		d.Older = older.Encode()
	}
	v.Title, v.Nav, v.Data = "Jobs", "jobs", d
	if q.Get("rows") == "1" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return h.pages["jobs"].ExecuteTemplate(w, "rows", v)
	}
	d.Services = h.serviceNames(r.Context()) // the filter's, not the rows'
	v.Data = d
	return h.render(w, "jobs", v)
}
