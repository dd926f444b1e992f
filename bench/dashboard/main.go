// Command dashboard measures the dashboard's budgets (issue 20) in one
// process, against the alternatives in the same run:
//
//   - the jobs page with 1,000 jobs in history: bytes sent and server
//     render time (p50/p95/p99), against GET /api/jobs with the same
//     page size, and against one page listing all 1,000 jobs;
//   - the job page of a job with a 10 MB log: bytes and render time,
//     against GET /api/jobs/:id/log, which sends the whole log; and,
//     when chromium is installed, the time a real browser takes from
//     navigation until the log's last line is on screen.
//
// The store is the real SQLite store and log directory in a temporary
// data dir; requests go straight to the handler (ServeHTTP), so render
// time excludes the network. Usage (from the repository root):
//
//	go run ./bench/dashboard [-n 300]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/dashboard"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/server"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/updater"
)

const token = "bench-admin-token-0123456789"

func main() {
	n := flag.Int("n", 300, "requests per measurement")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/dashboard:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-dashboard-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := config.Load(strings.NewReader(`
registry: {host: "127.0.0.1:5000"}
tokens: [{name: bench, token: `+token+`, scopes: [admin]}]
projects:
  - {name: shop, repo: "https://git.example.com/team/shop.git", secret: bench-secret-0123456789, images: [{name: shop/api}], deploy: [{branch: main, services: [shop-api]}]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		return err
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "db"))
	if err != nil {
		return err
	}
	defer st.Close()
	logs, err := store.NewLogDir(filepath.Join(dir, "logs"))
	if err != nil {
		return err
	}
	var last int64
	t0 := time.Now().Add(-1000 * time.Minute)
	for i := range 1000 {
		at := t0.Add(time.Duration(i) * time.Minute)
		j := &job.Job{Project: "shop", Action: job.ActionBuild, Trigger: job.TriggerPush, Status: job.Succeeded, Ref: "refs/heads/main", Branch: "main",
			Commit: fmt.Sprintf("%040x", i), Who: "tess", Created: at, Started: at, Finished: at.Add(40 * time.Second),
			Stages: []job.Stage{{Name: "fetch", Started: at, Finished: at.Add(time.Second)}, {Name: "build", Started: at.Add(time.Second), Finished: at.Add(30 * time.Second)}},
			Images: []job.Image{{Name: "shop/api", Tag: "main-" + at.Format("20060102150405"), Digest: fmt.Sprintf("sha256:%064x", i)}},
			Services: []updater.Result{{Service: "shop-api", Outcome: updater.Updated, Image: "127.0.0.1:5000/shop/api:main@sha256:abc",
				Started: at.Add(30 * time.Second), Finished: at.Add(40 * time.Second)}}}
		if err := st.Create(ctx, j, nil); err != nil {
			return fmt.Errorf("create job %d: %w", i, err)
		}
		last = j.ID
	}
	w, err := logs.Create(last)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		line := fmt.Sprintf("step %08d: compiling package number %d of the build, output of a chatty compiler\n", i, i)
		if _, err := w.Write([]byte(line)); err != nil {
			return err
		}
		if i*len(line) > 10<<20 {
			break
		}
	}
	w.Close()

	sessions := dashboard.NewSessions(time.Hour, nil)
	dash, err := dashboard.New(dashboard.Deps{Config: cfg, Jobs: st, Logs: logs, Sessions: sessions, Log: zerolog.Nop()})
	if err != nil {
		return err
	}
	h := server.New(server.Deps{Config: cfg, Store: st, Logs: logs, Log: zerolog.Nop(), Sessions: sessions, Dashboard: dash})
	cookie, err := signIn(h)
	if err != nil {
		return err
	}
	fmt.Printf("1,000 jobs in history; job %d has a 10 MB log; %d requests each; %s\n\n", last, n, time.Now().UTC().Format(time.RFC3339))
	fmt.Println("| request | bytes | p50 | p95 | p99 |")
	fmt.Println("|---|---|---|---|---|")
	for _, m := range []struct{ name, path string }{
		{"dashboard jobs page (50 jobs)", "/jobs"},
		{"dashboard jobs page rows, polled live", "/jobs?rows=1"},
		{"alternative: GET /api/jobs?limit=50 (JSON)", "/api/jobs?limit=50"},
		{"alternative: all 1,000 jobs as JSON (time per page of 500, bytes of both)", "/api/jobs?limit=500"},
		{"dashboard job page, 10 MB log (tail only)", fmt.Sprintf("/jobs/%d", last)},
		{"alternative: GET /api/jobs/:id/log (whole log)", fmt.Sprintf("/api/jobs/%d/log", last)},
	} {
		size, ds, err := measure(h, cookie, m.path, n)
		if err != nil {
			return fmt.Errorf("%s: %w", m.path, err)
		}
		if strings.Contains(m.name, "all 1,000") {
			size *= 2
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", m.name, kb(size), pct(ds, 50), pct(ds, 95), pct(ds, 99))
	}
	return browserTiming(h, cookie, last)
}

func signIn(h http.Handler) (*http.Cookie, error) {
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if len(w.Result().Cookies()) != 1 {
		return nil, fmt.Errorf("sign in: %d %s", w.Code, w.Body)
	}
	return w.Result().Cookies()[0], nil
}

// measure requests path n times and returns the answer's size and each
// request's time in the handler.
func measure(h http.Handler, c *http.Cookie, path string, n int) (int, []time.Duration, error) {
	var size int
	ds := make([]time.Duration, 0, n)
	for range n {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(c)
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		ds = append(ds, time.Since(start))
		if w.Code != http.StatusOK {
			return 0, nil, fmt.Errorf("status %d: %.200s", w.Code, w.Body)
		}
		size = w.Body.Len()
	}
	slices.Sort(ds)
	return size, ds, nil
}

func pct(ds []time.Duration, p int) string {
	d := ds[min(len(ds)-1, len(ds)*p/100)]
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

func kb(n int) string {
	if n > 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KB", float64(n)/1024)
}

// browserTiming opens the 10 MB log's job page in headless chromium,
// over loopback, and reports the time from navigation to the log's last
// line being in the page, and how much of the log the page holds.
func browserTiming(h http.Handler, c *http.Cookie, id int64) error {
	path, err := exec.LookPath("chromium")
	if err != nil {
		fmt.Println("\n(no chromium: browser timing skipped)")
		return nil
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	userDir, err := os.MkdirTemp("", "bench-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(userDir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(userDir))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()
	u := srv.URL
	// Sign in through the page, as a user would.
	if err := chromedp.Do(ctx, chromedp.Navigate(u+"/signin"), chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#signout"))); err != nil {
		return fmt.Errorf("browser sign in: %w", err)
	}
	var times []time.Duration
	var held int
	for range 10 {
		start := time.Now()
		if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("%s/jobs/%d", u, id)), chromedp.WaitVisible(chromedp.CSS("#log"))); err != nil {
			return fmt.Errorf("open job page: %w", err)
		}
		times = append(times, time.Since(start))
		if held, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector("#log").textContent.length`)); err != nil {
			return err
		}
		last, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#log").textContent.trim().split("\n").pop()`))
		if err != nil || !bytes.HasPrefix([]byte(last), []byte("step ")) {
			return fmt.Errorf("log end not shown: %q %v", last, err)
		}
	}
	slices.Sort(times)
	fmt.Printf("\nchromium: 10 MB log's job page open with its end shown: median %s, slowest of 10 %s; the page holds %s of the log\n",
		times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), kb(held))
	return nil
}
