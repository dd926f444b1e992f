package dashboard

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/swarmhook/swarmhook/config"
)

// maxSigninBody bounds the sign-in form: a token and a path.
const maxSigninBody = 8 << 10

type signinData struct {
	Next  string
	Error string
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, "signin", view{Title: "Sign in", Data: signinData{Next: localPath(r.URL.Query().Get("next"))}})
}

// signin exchanges the form's API token for a session cookie and sends
// the browser on to where it was going.
func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSigninBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "sign-in form: "+err.Error(), http.StatusBadRequest)
		return
	}
	next := localPath(r.PostForm.Get("next"))
	t, ok := h.d.Config.TokenFor(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, "signin", view{Title: "Sign in", Data: signinData{Next: next, Error: "That token is not one of swarmhook's API tokens."}})
		return
	}
	if !slices.Contains(t.Scopes, config.ScopeRead) && !slices.Contains(t.Scopes, config.ScopeAdmin) {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusForbidden)
		h.render(w, "signin", view{Title: "Sign in", Data: signinData{Next: next, Error: "That token lacks the read scope, which the dashboard needs to show anything."}})
		return
	}
	secure := strings.HasPrefix(h.d.Config.PublicURL, "https://") || r.TLS != nil
	http.SetCookie(w, h.d.Sessions.start(t, secure))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signout ends the session. The form carries the session's CSRF token,
// so another site cannot sign a user out.
func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSigninBody)
	r.ParseForm()
	se, ok := h.d.Sessions.lookup(r)
	if ok && subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(se.csrf)) != 1 {
		http.Error(w, ErrCSRF.Error(), http.StatusForbidden)
		return
	}
	http.SetCookie(w, h.d.Sessions.end(r))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// localPath is p when it is a path on this site, else "/": the sign-in
// page never sends a browser elsewhere. Browsers drop tabs and newlines
// from a URL and read a backslash as a slash, so "/\t/evil" and "/\\evil"
// would reach another host as "//evil": any control character or
// backslash is refused, wherever it stands.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsFunc(p, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == '\\'
	}) {
		return "/"
	}
	return p
}
