package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// JobReader reads job records.
type JobReader interface {
	Get(ctx context.Context, id int64) (*job.Job, error)
	List(ctx context.Context, f store.Filter) ([]*job.Job, error)
}

// LogReader opens job logs. A reader that is also an io.Seeker (an
// *os.File) lets a page show a log's end without reading all of it.
type LogReader interface {
	Open(id int64) (io.ReadCloser, error)
}

// Deps are the dashboard's collaborators.
type Deps struct {
	Config   *config.Config
	Jobs     JobReader
	Logs     LogReader
	Sessions *Sessions
	// Stacks lists the services of stack targets for the services page;
	// nil lists none of them.
	Stacks job.StackServices
	Log    zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	d     Deps
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New parses the embedded templates and builds the routes.
func New(d Deps) (*Handler, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &Handler{d: d, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	funcs := template.FuncMap{"short": short, "when": when, "dur": dur, "statusClass": statusClass, "describe": describe}
	for _, name := range []string{"signin", "projects", "jobs", "job", "services", "prune", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse dashboard template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard static files: %w", err)
	}
	// Signing in and out are forms: refuse them cross-origin.
	cop := http.NewCrossOriginProtection()
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static))))
	h.mux.HandleFunc("GET /signin", h.signinPage)
	h.mux.Handle("POST /signin", cop.Handler(http.HandlerFunc(h.signin)))
	h.mux.Handle("POST /signout", cop.Handler(http.HandlerFunc(h.signout)))
	h.mux.HandleFunc("GET /badge/{project}/{branch...}", h.badge)
	h.mux.HandleFunc("GET /{$}", h.signedIn(h.projects))
	h.mux.HandleFunc("GET /jobs", h.signedIn(h.jobs))
	h.mux.HandleFunc("GET /jobs/{id}", h.signedIn(h.job))
	h.mux.HandleFunc("GET /jobs/{id}/log", h.signedIn(h.logChunk))
	h.mux.HandleFunc("GET /services", h.signedIn(h.services))
	h.mux.HandleFunc("GET /prune", h.signedIn(h.prunePage))
	return h, nil
}

// Paths are the paths New routes, in echo's syntax, for a server that
// mounts the dashboard beside other routes.
func (h *Handler) Paths() []string {
	return []string{"/", "/signin", "/signout", "/jobs", "/jobs/*", "/services", "/prune", "/static/*", "/badge/*"}
}

// ServeHTTP serves a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	h.mux.ServeHTTP(w, r)
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string
	User   string
	CSRF   string
	scopes []config.Scope
	Data   any
}

// Can reports whether the signed-in token may do what scope allows.
func (v view) Can(scope string) bool {
	return slices.Contains(v.scopes, config.Scope(scope)) || slices.Contains(v.scopes, config.ScopeAdmin)
}

// Scopes lists the token's scopes, for the page's script.
func (v view) Scopes() string {
	s := make([]string, len(v.scopes))
	for i, sc := range v.scopes {
		s[i] = string(sc)
	}
	if slices.Contains(v.scopes, config.ScopeAdmin) {
		s = append(s, string(config.ScopeDeploy), string(config.ScopeRollback), string(config.ScopeScale))
	}
	return strings.Join(s, " ")
}

type pageFunc func(w http.ResponseWriter, r *http.Request, v view) error

// signedIn runs fn for a request with a live session, and sends others
// to the sign-in page.
func (h *Handler) signedIn(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se, ok := h.d.Sessions.lookup(r)
		if !ok {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := fn(w, r, view{User: se.name, CSRF: se.csrf, scopes: se.scopes}); err != nil {
			h.fail(w, r, err)
		}
	}
}

// errNotFound is a page or record that is not there.
var errNotFound = errors.New("not found")

// errBadRequest is a request naming something malformed.
var errBadRequest = errors.New("bad request")

// fail answers an error page; internal errors are logged in full and
// shown in brief.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, store.ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, errBadRequest):
		code, msg = http.StatusBadRequest, err.Error()
	default:
		h.d.Log.Error().Err(err).Str("path", r.URL.Path).Msg("dashboard page failed")
	}
	w.WriteHeader(code)
	h.render(w, "error", view{Title: http.StatusText(code), Data: msg})
}

// render writes page name, whole or not at all, so a failed template
// is answered by an error page instead of half a page.
func (h *Handler) render(w http.ResponseWriter, name string, v view) error {
	var b bytes.Buffer
	if err := h.pages[name].Execute(&b, v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
	return nil
}
