package testenv

import (
	"net"
	"net/http"
	"net/http/cgi"
	"path/filepath"
	"testing"
)

// ServeGit serves repo over Git's smart HTTP protocol, with the real
// git http-backend behind net/http/cgi, and returns its clone URL. When
// user is not empty, requests need that basic-auth user and password.
func ServeGit(t testing.TB, repo *GitRepo, user, password string) string {
	t.Helper()
	backend := &cgi.Handler{
		Path: "/usr/lib/git-core/git-http-backend",
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo.Dir), "GIT_HTTP_EXPORT_ALL=1"},
	}
	var h http.Handler = backend
	if user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			backend.ServeHTTP(w, r)
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/" + filepath.Base(repo.Dir) + "/.git"
}
