package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// limitsConfig has a webhook limit large enough for the 5 MB bodies of
// the issue, a managed service, and three read tokens.
const limitsConfig = `
registry: {host: "r:5000"}
webhook: {max_body_bytes: 8388608}
tokens:
  - {name: reader, token: reader-token-0123456789, scopes: [read]}
  - {name: watcher, token: watcher-token-0123456789, scopes: [read]}
  - {name: boss, token: admin-token-0123456789, scopes: [admin]}
projects:
  - name: shop
    repo: x
    secret: ` + testSecret + `
    images: [{name: shop/api}]
    deploy: [{branch: main, services: [{name: shop_api, image: shop/api}]}]
`

// failsafe ends a test whose bound never came; it is no assertion on how
// long anything takes.
const failsafe = 20 * time.Second

// liveServer is a Server behind its own http.Server on a loopback port.
type liveServer struct {
	*Server
	addr  string
	store *store.SQLite
	logs  *store.LogDir
	log   *syncBuffer
}

// startLive serves a Server built with deps (limitsConfig unless deps
// has a config, and a store and logs of its own) and limits, on a
// listener whose connections have small send buffers so a client that
// does not read fills them quickly.
func startLive(t *testing.T, limits Limits, deps Deps) *liveServer {
	t.Helper()
	st, logs := openStore(t)
	out := &syncBuffer{}
	if deps.Config == nil {
		deps.Config = loadConfig(t, limitsConfig)
	}
	deps.Jobs, deps.Store, deps.Logs = &fakeJobs{store: st}, st, logs
	deps.Log, deps.Limits = zerolog.New(out), limits
	s := New(deps)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.HTTPServer()
	go hs.Serve(smallBuffers{l})
	t.Cleanup(func() { hs.Close() })
	return &liveServer{Server: s, addr: l.Addr().String(), store: st, logs: logs, log: out}
}

func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// smallBuffers gives accepted connections a small send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// dialSmall connects with a small receive buffer, set before the
// handshake so the window stays small.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(failsafe))
	return c
}

// waitFor polls cond until it holds, failing the test at failsafe.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(failsafe); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting: %s", what)
		}
	}
}

// handled waits until the access log records a request to path: its
// handler has returned.
func (ls *liveServer) handled(t *testing.T, path string) {
	t.Helper()
	waitFor(t, "the handler of "+path+" to return", func() bool { return strings.Contains(ls.log.String(), `"path":"`+path+`"`) })
}

// runningJob records a running job whose log holds size bytes.
func (ls *liveServer) runningJob(t *testing.T, size int) (*job.Job, io.WriteCloser) {
	t.Helper()
	j := &job.Job{Project: "shop", Status: job.Running}
	if err := ls.store.Create(context.Background(), j, nil); err != nil {
		t.Fatal(err)
	}
	w, err := ls.logs.Create(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	line := strings.Repeat("x", 99) + "\n"
	for n := 0; n < size; n += len(line) {
		io.WriteString(w, line)
	}
	return j, w
}

// TestStalledBodyIsCutOffWithoutItsDeclaredSize: clients that declare a
// large body and stall are answered 408 once the read timeout passes,
// and the server never allocates what they declared.
func TestStalledBodyIsCutOffWithoutItsDeclaredSize(t *testing.T) {
	const clients, declared = 20, 5 << 20
	for _, tt := range []struct {
		name, path string
		declared   int
	}{
		{"webhook", "/hooks/shop", declared},
		{"api", "/api/services/shop_api/scale", 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ls := startLive(t, Limits{ReadTimeout: 300 * time.Millisecond}, Deps{})
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			conns := make([]net.Conn, clients)
			for i := range conns {
				conns[i] = dialSmall(t, ls.addr)
				fmt.Fprintf(conns[i], "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token-0123456789\r\nX-GitHub-Event: push\r\nContent-Length: %d\r\n\r\n{\"ref\":", tt.path, tt.declared)
			}
			for i, c := range conns {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("client %d: no answer to a stalled body: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive in time") {
					t.Errorf("client %d: %d %s, want 408 saying the body did not arrive in time", i, resp.StatusCode, body)
				}
			}
			runtime.ReadMemStats(&after)
			// TotalAlloc only grows: it counts what was allocated even if
			// collected since. One declared body is far more than 20
			// connections need; allocating what each declared is 20 times more.
			if got := after.TotalAlloc - before.TotalAlloc; tt.declared == declared && got > declared {
				t.Errorf("the server allocated %d MB for %d stalled clients that each declared %d MB", got>>20, clients, declared>>20)
			}
		})
	}
}

// TestIdleKeepAliveIsClosed: a connection left idle after an answer is
// closed by the server.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	ls := startLive(t, Limits{IdleTimeout: 100 * time.Millisecond}, Deps{})
	c := dialSmall(t, ls.addr)
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if resp.Close {
		t.Fatal("the server closed the connection after the answer; the test needs a keep-alive")
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle keep-alive: read %v, want EOF from the server closing it", err)
	}
}

// TestClientThatNeverReadsIsDropped: a client that stops reading an
// answer is dropped, by the write timeout for an ordinary answer and by
// the per-write deadline for a followed log, which frees its slot.
func TestClientThatNeverReadsIsDropped(t *testing.T) {
	for _, tt := range []struct {
		name  string
		path  string
		final bool
	}{
		{"job log", "/api/jobs/1/log", true},
		{"followed log", "/api/jobs/1/log?follow=1", false},
		{"ordinary answer", "/api/jobs/1", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ls := startLive(t, Limits{WriteTimeout: 300 * time.Millisecond, StreamWriteTimeout: 300 * time.Millisecond}, Deps{})
			j, _ := ls.runningJob(t, 2<<20)
			if tt.final {
				// An ordinary answer this large: a job whose error is 2 MB.
				j.Status, j.Error = job.Failed, strings.Repeat("e", 2<<20)
				ls.store.Save(context.Background(), j)
			}
			c := dialSmall(t, ls.addr)
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer reader-token-0123456789\r\n\r\n", tt.path)
			ls.handled(t, strings.Split(tt.path, "?")[0])
			if n := ls.followers.count(); n != 0 {
				t.Errorf("%d followers after the only one was dropped", n)
			}
			got, _ := io.ReadAll(c)
			if len(got) >= 2<<20 {
				t.Errorf("the client got all %d bytes without reading until the end", len(got))
			}
		})
	}
}

// TestWaitOutlivesTheWriteTimeout: a ?wait=1 answer comes after the
// server's write timeout has passed and still arrives: late answers have
// a write deadline of their own (TestFollowLogStreamsUntilJobEnds shows
// the same of a followed log).
func TestWaitOutlivesTheWriteTimeout(t *testing.T) {
	ls := startLive(t, Limits{WriteTimeout: time.Millisecond}, Deps{})
	// ?wait=1 answers after at least one followPoll.
	req, _ := http.NewRequest(http.MethodPost, "http://"+ls.addr+"/api/services/shop_api/redeploy?wait=1", nil)
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := failsafeClient.Do(req)
		if err != nil {
			t.Errorf("?wait=1: %v", err)
			return
		}
		defer resp.Body.Close()
		if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
			t.Errorf("?wait=1: %d %s", resp.StatusCode, body)
		}
	}()
	var waited *job.Job
	waitFor(t, "the redeploy job", func() bool {
		waited, _ = ls.store.Get(context.Background(), 1)
		return waited != nil
	})
	waited.Status = job.Succeeded
	ls.store.Save(context.Background(), waited)
	<-done
}

// TestFollowerCap: log followers over the cap per token or in all get
// 429; a slot comes back when a stream ends and when its client leaves.
func TestFollowerCap(t *testing.T) {
	ls := startLive(t, Limits{FollowersPerToken: 1, Followers: 2}, Deps{})
	_, w1 := ls.runningJob(t, 0)
	j2, w2 := ls.runningJob(t, 0)
	io.WriteString(w1, "one\n")
	io.WriteString(w2, "two\n")

	follow := func(token string, id int64) (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/api/jobs/%d/log?follow=1", ls.addr, id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := failsafeClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode == http.StatusOK {
			// The first line arrives once the handler holds its slot.
			if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatalf("first line %q: %v", line, err)
			}
		}
		return resp, cancel
	}
	refused := func(resp *http.Response, want string) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), want) {
			t.Errorf("%d %s, want 429 saying %q", resp.StatusCode, body, want)
		}
	}

	_, leave := follow("reader-token-0123456789", 1)
	resp, _ := follow("reader-token-0123456789", 2)
	refused(resp, "token reader follows or waits on 1 jobs already")
	boss, _ := follow("admin-token-0123456789", 2)
	resp, _ = follow("watcher-token-0123456789", 1)
	refused(resp, "2 jobs are being followed or waited on")

	// The client leaves: its slot comes back.
	leave()
	waitFor(t, "the follower that left to free its slot", func() bool { return ls.followers.count() == 1 })
	if resp, _ := follow("reader-token-0123456789", 1); resp.StatusCode != http.StatusOK {
		t.Errorf("after a follower left: %d", resp.StatusCode)
	}

	// The stream ends with its job: its slot comes back before the
	// client sees the end.
	j2.Status = job.Succeeded
	ls.store.Save(context.Background(), j2)
	io.ReadAll(boss.Body)
	if n := ls.followers.count(); n != 1 {
		t.Errorf("%d followers after a stream ended, want 1", n)
	}
	if resp, _ := follow("watcher-token-0123456789", 1); resp.StatusCode != http.StatusOK {
		t.Errorf("after a stream ended: %d", resp.StatusCode)
	}
}

// failsafeClient gives up on an answer at failsafe.
var failsafeClient = &http.Client{Timeout: failsafe}

// TestWaitTakesAFollowerSlot: an action with ?wait=1 holds a follower
// slot while it waits, and one over the cap is refused before anything
// is submitted.
func TestWaitTakesAFollowerSlot(t *testing.T) {
	ls := startLive(t, Limits{FollowersPerToken: 1, Followers: 1}, Deps{})
	redeploy := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ls.addr+"/api/services/shop_api/redeploy?wait=1", nil)
		req.Header.Set("Authorization", "Bearer admin-token-0123456789")
		return failsafeClient.Do(req)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := redeploy(); err == nil {
			resp.Body.Close()
		}
	}()
	var waited *job.Job
	waitFor(t, "the first redeploy job", func() bool {
		waited, _ = ls.store.Get(context.Background(), 1)
		return waited != nil
	})

	resp, err := redeploy()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "waits on 1 jobs already") {
		t.Errorf("second waiting redeploy: %d %s, want 429", resp.StatusCode, body)
	}
	if j, _ := ls.store.Get(context.Background(), 2); j != nil {
		t.Errorf("the refused redeploy submitted job %d", j.ID)
	}

	waited.Status = job.Succeeded
	ls.store.Save(context.Background(), waited)
	<-done
	if n := ls.followers.count(); n != 0 {
		t.Errorf("%d follower slots held after the wait ended", n)
	}
}
