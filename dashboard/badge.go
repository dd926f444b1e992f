package dashboard

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// badgeSVG is a shields.io-style badge; label and message are escaped
// by the caller's choice of words (fixed strings only).
const badgeSVG = `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="build: %s">` +
	`<rect width="44" height="20" fill="#555"/><rect x="44" width="%d" height="20" fill="%s"/>` +
	`<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">` +
	`<text x="6" y="14">build</text><text x="50" y="14">%s</text></g></svg>`

// badge answers /badge/{project}/{branch}.svg: how the branch's last
// build or deploy ended. It needs no sign-in (it says only that) unless
// dashboard.private_badges is set.
func (h *Handler) badge(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.d.Sessions.lookup(r); h.d.Config.Dashboard.PrivateBadges && !ok {
		http.Error(w, "sign in to see badges (dashboard.private_badges)", http.StatusUnauthorized)
		return
	}
	project := r.PathValue("project")
	branch, ok := strings.CutSuffix(r.PathValue("branch"), ".svg")
	msg, color, code := "unknown", "#9f9f9f", http.StatusNotFound
	if _, known := h.d.Config.Project(project); ok && known {
		code, msg = http.StatusOK, "none"
		jobs, err := h.d.Jobs.List(r.Context(), store.Filter{Project: project, Branch: branch, Limit: 20})
		if err != nil {
			h.d.Log.Error().Err(err).Str("project", project).Msg("badge: list jobs")
			msg, code = "error", http.StatusInternalServerError
		}
		for _, j := range jobs {
			if j.Action == job.ActionBuild || j.Action == job.ActionDeploy {
				msg = string(j.Status)
				color = map[string]string{"ok": "#4c1", "bad": "#e05d44", "run": "#dfb317"}[statusClass(j.Status)]
				if color == "" {
					color = "#9f9f9f"
				}
				break
			}
		}
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	width := 7*len(msg) + 12
	fmt.Fprintf(w, badgeSVG, 44+width, msg, width, color, msg)
}
