package testenv

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// StartAuthRegistry runs a docker-registry of its own on a free loopback
// port, with htpasswd basic auth for user and password and storage under
// the test's temporary directory, and returns its host:port. It is stopped
// when the test ends. The engine trusts loopback registries over plain
// HTTP, so pushes to it need no daemon configuration.
func StartAuthRegistry(t testing.TB, user, password string) string {
	t.Helper()
	return StartAuthRegistryOn(t, "127.0.0.1", user, password)
}

// StartAuthRegistryOn is StartAuthRegistry listening on ip, such as
// BridgeAddr where the worker nodes reach it (every engine trusts plain
// HTTP there too).
func StartAuthRegistryOn(t testing.TB, ip, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startRegistry(t, "/usr/bin/docker-registry", ip, fmt.Sprintf(`auth:
  htpasswd: {realm: swarmhook-test, path: %s}
`, htpasswd), http.StatusUnauthorized)
}

// startRegistry runs the registry binary bin on ip and a free port with
// deletes enabled, storage under the test's temporary directory and the
// extra YAML appended to its config, waits until GET /v2/ answers
// readyStatus, stops it when the test ends, and returns its host:port.
func startRegistry(t testing.TB, bin, ip, extra string, readyStatus int) string {
	t.Helper()
	dir := t.TempDir()
	addr := net.JoinHostPort(ip, strconv.Itoa(FreePort(t)))
	cfg := fmt.Sprintf(`version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http: {addr: %s}
`, filepath.Join(dir, "data"), addr) + extra
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, TrimLines(out.String(), 40))
		}
	})
	Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("%s exited:\n%s", bin, out.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == readyStatus, resp.Status
	})
	return addr
}

// FlakyProxy stands in front of a registry on a loopback port of its own
// and fails requests on demand: with 503 Service Unavailable, as a
// registry behind a restarting load balancer does, or by refusing
// connections, as a registry that is down does.
type FlakyProxy struct {
	// Host is the proxy's host:port, used as the registry host.
	Host string

	handler http.Handler
	mu      sync.Mutex
	failN   int      // the next failN requests get 503
	rules   []*match // requests matching these get 503
	failed  []string // requests answered 503 so far
	srv     *http.Server
}

type match struct {
	method, suffix string
	n              int
}

// StartFlakyProxy proxies to the registry at target (host:port) until the
// test ends; it forwards everything until told otherwise.
func StartFlakyProxy(t testing.TB, target string) *FlakyProxy {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	p := &FlakyProxy{}
	// The request keeps the proxy's Host, so the registry's Location
	// headers name the proxy; any that name the backend are turned back.
	rp.ModifyResponse = func(resp *http.Response) error {
		if loc := resp.Header.Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err == nil && u.Host == target {
				u.Host = p.Host
				resp.Header.Set("Location", u.String())
			}
		}
		return nil
	}
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.shouldFail(r) {
			http.Error(w, "registry restarting", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Host = l.Addr().String()
	p.serve(l)
	t.Cleanup(func() { p.SetDown(true) })
	return p
}

func (p *FlakyProxy) serve(l net.Listener) {
	p.srv = &http.Server{Handler: p.handler}
	go p.srv.Serve(l)
}

func (p *FlakyProxy) shouldFail(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	fail := false
	if p.failN > 0 {
		p.failN--
		fail = true
	}
	for _, m := range p.rules {
		if !fail && m.n > 0 && r.Method == m.method && strings.HasSuffix(r.URL.Path, m.suffix) {
			m.n--
			fail = true
		}
	}
	if fail {
		p.failed = append(p.failed, r.Method+" "+r.URL.Path)
	}
	return fail
}

// FailNext answers the next n requests with 503.
func (p *FlakyProxy) FailNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failN = n
}

// FailMatching answers the next n requests with method whose path ends
// in suffix with 503.
func (p *FlakyProxy) FailMatching(method, suffix string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &match{method, suffix, n})
}

// SetDown stops the proxy, so connections are refused as by a registry
// that is not running, or starts it again on the same port.
func (p *FlakyProxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if down && p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
	if !down && p.srv == nil {
		if l, err := net.Listen("tcp", p.Host); err == nil {
			p.serve(l)
		}
	}
}

// Failed lists the requests answered with 503 so far.
func (p *FlakyProxy) Failed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.failed)
}
