package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/source"
)

// stalledHost accepts connections and never answers on them, as a
// registry or Git host that hangs does; it returns its host:port.
func stalledHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// failingHost answers every request with code.
func failingHost(t *testing.T, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", code)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// closedHost is a loopback address nothing listens on.
func closedHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// call sends an admin API request and returns the status and body.
func (ls *liveServer) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+ls.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	resp, err := failsafeClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRegistryCallsAreBounded: the API calls that ask the registry for
// tags answer 504 naming it when it stalls and 502 when it fails, with
// the real registry client.
func TestRegistryCallsAreBounded(t *testing.T) {
	for _, reg := range []struct {
		name     string
		host     func(*testing.T) string
		wantCode int
		want     string
	}{
		{"stalled", stalledHost, http.StatusGatewayTimeout, "did not answer within"},
		{"failing", func(t *testing.T) string { return failingHost(t, http.StatusBadRequest) }, http.StatusBadGateway, "failed"},
	} {
		for _, call := range []struct{ name, method, path, body string }{
			{"tags", http.MethodGet, "/api/services/shop_api/tags", ""},
			{"rollback to a tag", http.MethodPost, "/api/services/shop_api/rollback", `{"tag":"main-20260101000000"}`},
			{"deploy a tag", http.MethodPost, "/api/projects/shop/deploy", `{"branch":"main","tag":"main-20260101000000"}`},
		} {
			t.Run(reg.name+"/"+call.name, func(t *testing.T) {
				host := reg.host(t)
				ls := startLive(t, Limits{UpstreamTimeout: 300 * time.Millisecond}, Deps{
					Config:   loadConfig(t, strings.Replace(limitsConfig, "r:5000", host, 1)),
					Registry: registry.New(registry.Credentials{Host: host}, true),
				})
				code, body := ls.call(t, call.method, call.path, call.body)
				if code != reg.wantCode || !strings.Contains(body, "registry "+host) || !strings.Contains(body, reg.want) {
					t.Errorf("%d %s, want %d naming registry %s and saying %q", code, body, reg.wantCode, host, reg.want)
				}
			})
		}
	}
}

// mirrorHeads finds heads with the real source package, as job.Runner
// does for a repository without credentials.
type mirrorHeads struct{ m *source.Mirrors }

func (h mirrorHeads) Head(ctx context.Context, p *config.Project, ref string) (string, error) {
	return h.m.Head(ctx, source.Repo{URL: p.Repo}, ref)
}

// TestGitHostErrorsOnManualDeploy: a manual deploy of a branch answers
// 502 (or 504 when it stalls) naming the Git host when the host fails,
// and 404 only when the branch really is not there.
func TestGitHostErrorsOnManualDeploy(t *testing.T) {
	repo := testenv.NewGitRepo(t)
	repo.Commit("first", map[string]string{"README": "hi\n"})
	for _, tt := range []struct {
		name     string
		repo     func(*testing.T) (url, host string)
		branch   string
		wantCode int
		want     string
	}{
		{"host answers 500", func(t *testing.T) (string, string) {
			h := failingHost(t, http.StatusInternalServerError)
			return "http://" + h + "/shop.git", h
		}, "main", http.StatusBadGateway, "failed"},
		{"credentials in the URL", func(t *testing.T) (string, string) {
			h := failingHost(t, http.StatusInternalServerError)
			return "http://tess:s3cret-pass@" + h + "/shop.git", h
		}, "main", http.StatusBadGateway, "failed"},
		{"host refuses", func(t *testing.T) (string, string) {
			h := closedHost(t)
			return "http://" + h + "/shop.git", h
		}, "main", http.StatusBadGateway, "failed"},
		{"host stalls", func(t *testing.T) (string, string) {
			h := stalledHost(t)
			return "http://" + h + "/shop.git", h
		}, "main", http.StatusGatewayTimeout, "did not answer within"},
		{"no such branch", func(*testing.T) (string, string) { return repo.URL(), "" }, "nope", http.StatusNotFound, "refs/heads/nope does not exist"},
		{"branch exists", func(*testing.T) (string, string) { return repo.URL(), "" }, "main", http.StatusAccepted, `"job"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, host := tt.repo(t)
			mirrors, err := source.NewMirrors(filepath.Join(t.TempDir(), "mirrors"))
			if err != nil {
				t.Fatal(err)
			}
			ls := startLive(t, Limits{UpstreamTimeout: 300 * time.Millisecond}, Deps{
				Config: loadConfig(t, strings.Replace(limitsConfig, "repo: x", "repo: "+url, 1)),
				Heads:  mirrorHeads{mirrors},
			})
			code, body := ls.call(t, http.MethodPost, "/api/projects/shop/deploy", fmt.Sprintf(`{"branch":%q}`, tt.branch))
			if code != tt.wantCode || !strings.Contains(body, tt.want) || (host != "" && !strings.Contains(body, "Git host "+host)) {
				t.Errorf("%d %s, want %d saying %q and naming Git host %q", code, body, tt.wantCode, tt.want, host)
			}
			if strings.Contains(body, "s3cret-pass") {
				t.Errorf("the answer shows the password in the clone URL: %s", body)
			}
		})
	}
}
