package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// browser starts Debian's chromium headless with a fresh profile and
// returns a tab. Without chromium the test is skipped, or fails under
// CI=true (scripts/infra.sh installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium needed for the browser test (run scripts/infra.sh): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// The network is closed: without these flags chromium waits on
	// connections it will never get.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers often have a tiny /dev/shm
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab wraps a browser tab with the test's failure handling.
type tab struct {
	t   *testing.T
	ctx context.Context
	url string
	// shots is where screenshot writes (screenshotDir).
	shots string
}

func (b tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b tab) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.url+path))
}

// eval runs a JavaScript expression and returns its value.
func eval[T any](b tab, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// until polls a JavaScript condition until it holds.
func (b tab) until(timeout time.Duration, js string) {
	b.t.Helper()
	testenv.Eventually(b.t, timeout, 100*time.Millisecond, func() (bool, string) {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("Boolean("+js+")"))
		return err == nil && ok, fmt.Sprintf("waiting for %s (%v)", js, err)
	})
}

// screenshotDir is where screenshot saves pages: docs/dashboard/, for the
// README, when SWARMHOOK_SCREENSHOTS=1, and otherwise a directory of the
// test's own, so a test run leaves the work tree as it was.
func screenshotDir(t testing.TB) string {
	if os.Getenv("SWARMHOOK_SCREENSHOTS") == "1" {
		return filepath.Join(testenv.RepoRoot(), "docs", "dashboard")
	}
	return t.TempDir()
}

// screenshot saves the page as name.png in the test's screenshot
// directory and checks that it is a PNG.
func (b tab) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		b.t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(png))
	}
	dir := b.shots
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b tab) signIn(token string) {
	b.t.Helper()
	b.open("/signin")
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin")))
	b.until(30*time.Second, `document.querySelector("#signout")`)
}

func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	shots := screenshotDir(t)
	// One service on main, as the tags test has it.
	st := newTagStack(t)
	c, sh, repo, svc := st.c, st.sh, st.repo, st.svc
	image := func() string { return testenv.Inspect(t, c, svc).Spec.TaskTemplate.ContainerSpec.Image }

	v1 := st.push(t, "main", "good v1", false)
	if v1.Status != "succeeded" {
		t.Fatalf("v1: %s %s", v1.Status, v1.Error)
	}
	b := tab{t: t, ctx: ctx, url: sh.URL, shots: shots}

	// Signed out, every page sends the browser to sign in.
	b.open("/jobs")
	b.until(30*time.Second, `location.pathname == "/signin"`)
	b.screenshot("signin")
	b.signIn(testenv.AdminToken)

	// A push appears in the open job list without a reload.
	b.open("/jobs")
	b.until(30*time.Second, `document.querySelector("#job-`+fmt.Sprint(v1.ID)+`")`)
	eval[bool](b, `window.notReloaded = true`)
	repo.Git("checkout", "-q", "-B", "main")
	files := testenv.AppFiles(t, "good v2")
	files["Dockerfile"] = testenv.HealthyDockerfile
	commit := repo.Commit("good v2", files)
	pushed := time.Now()
	code, body := sh.GitHubPush("tags", secret, testenv.GitHubPushBody("main", strings.Repeat("1", 40), commit, "good v2"))
	var queued struct{ Job int64 }
	if code != http.StatusAccepted || json.Unmarshal(body, &queued) != nil || queued.Job == 0 {
		t.Fatalf("push: %d %s", code, body)
	}
	row := fmt.Sprintf(`document.querySelector("#job-%d")`, queued.Job)
	b.until(time.Minute, row)
	t.Logf("the push's job appeared in the open job list %s after the push was accepted", time.Since(pushed).Round(time.Millisecond))
	if !eval[bool](b, `window.notReloaded === true`) {
		t.Error("the job list reloaded the page to show the push")
	}
	b.screenshot("jobs")

	// Its log streams into the open job page until the job ends.
	b.do("open the job", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#job-%d a`, queued.Job))))
	b.until(30*time.Second, `location.pathname == "/jobs/`+fmt.Sprint(queued.Job)+`"`)
	eval[bool](b, `window.notReloaded = true`)
	openedRunning := eval[bool](b, `!["succeeded","failed","superseded","interrupted"].includes(document.querySelector("#summary").dataset.status)`)
	atOpen := eval[int](b, `document.querySelector("#log").textContent.length`)
	b.until(4*time.Minute, `document.querySelector("#summary").dataset.status == "succeeded"`)
	logText := eval[string](b, `document.querySelector("#log").textContent`)
	if !strings.Contains(logText, commit) {
		t.Errorf("the job page's log does not name the commit built:\n%s", testenv.TrimLines(logText, 20))
	}
	if !eval[bool](b, `window.notReloaded === true`) {
		t.Error("the job page reloaded to follow the log")
	}
	if openedRunning && len(logText) <= atOpen {
		t.Errorf("the job was running when its page opened, but the log did not grow (%d bytes then, %d now)", atOpen, len(logText))
	}
	t.Logf("job page opened while the job was running: %v; log %d bytes then, %d at the end", openedRunning, atOpen, len(logText))
	if !eval[bool](b, `document.querySelector(".timeline .bar") !== null`) {
		t.Error("the finished job's page shows no timeline")
	}
	b.screenshot("job")

	// Roll back to the previous tag: the candidate's button, then Confirm.
	b.open("/services")
	cand := fmt.Sprintf(`document.querySelector('button[data-tag=%q]')`, v1.Images[0].Tag)
	b.until(time.Minute, cand)
	b.screenshot("services")
	b.do("click the rollback candidate", chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-tag=%q]`, v1.Images[0].Tag))))
	b.until(30*time.Second, `document.querySelector("#confirm").open`)
	question := eval[string](b, `document.querySelector("#confirm-text").textContent`)
	if !strings.Contains(question, svc) || !strings.Contains(question, v1.Images[0].Tag) {
		t.Errorf("the confirmation %q does not name the service and the tag", question)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	testenv.Eventually(t, 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		return image() == v1.Images[0].Ref, "service runs " + image() + ", want " + v1.Images[0].Ref
	})
	id := testenv.Inspect(t, c, svc).ID
	testenv.Eventually(t, 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		n, err := testenv.RunningTasks(c, id, v1.Images[0].Ref)
		return err == nil && n == 1, fmt.Sprintf("%d tasks run v1's digest (%v), want 1", n, err)
	})
	b.until(30*time.Second, `location.pathname.startsWith("/jobs/")`)

	b.until(4*time.Minute, `document.querySelector("#summary").dataset.status == "succeeded"`)

	// Build now: main's head is built and deployed again, by the session's token.
	b.open("/")
	b.until(30*time.Second, `document.querySelector('button[data-branch="main"]')`)
	b.screenshot("projects")
	b.do("build now", chromedp.Click(chromedp.CSS(`button[data-branch="main"]`)))
	b.until(30*time.Second, `document.querySelector("#confirm").open`)
	b.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.until(30*time.Second, `location.pathname.startsWith("/jobs/")`)
	b.until(4*time.Minute, `["succeeded","failed"].includes(document.querySelector("#summary").dataset.status)`)
	if facts := eval[string](b, `document.querySelector(".facts").textContent`); !strings.Contains(facts, "build main (manual)") || !strings.Contains(facts, "tester") || !strings.Contains(facts, commit) {
		t.Errorf("the Build now job's page says %q, want a manual build of main at %s by tester", facts, commit)
	}
	if st := eval[string](b, `document.querySelector("#summary").dataset.status`); st != "succeeded" {
		t.Errorf("Build now job %s", st)
	}

	b.open("/prune")
	b.until(2*time.Minute, `document.querySelector("#plan-table")`)
	b.screenshot("prune")

	// At a phone's width nothing but a table scrolls sideways.
	b.do("phone width", chromedp.EmulateViewport(390, 844))
	for _, p := range []string{"/", "/jobs", fmt.Sprintf("/jobs/%d", queued.Job), "/services"} {
		b.open(p)
		if wide := eval[int](b, `document.documentElement.scrollWidth`); wide > 390 {
			t.Errorf("%s is %d px wide on a 390 px phone", p, wide)
		}
	}
	b.open("/jobs")
	b.screenshot("jobs-phone")
	b.do("desktop width", chromedp.EmulateViewport(1280, 900))

	t.Run("forged cross-site action", func(t *testing.T) {
		b := tab{t: t, ctx: ctx, url: sh.URL, shots: shots}
		// Another origin (same site: 127.0.0.1, another port) posts a
		// rollback form to swarmhook; the browser sends the session
		// cookie, but not the page's CSRF token.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><form id=f method=post action="%s/api/services/%s/rollback"><input name=tag value=x></form><script>document.getElementById("f").submit()</script>`, sh.URL, svc)
		}))
		defer evil.Close()
		before := image()
		b.do("open the forging page", chromedp.Navigate(evil.URL))
		b.until(30*time.Second, `document.body && document.body.textContent.includes("refused")`)
		if got := eval[string](b, `document.body.textContent`); !strings.Contains(got, "cross-site request refused") {
			t.Errorf("the forged action was answered %s", got)
		}
		if got := image(); got != before {
			t.Errorf("the forged action changed the service: %s -> %s", before, got)
		}
	})

	t.Run("read token", func(t *testing.T) {
		b := tab{t: t, ctx: ctx, url: sh.URL, shots: shots}
		b.open("/jobs")
		b.do("sign out", chromedp.Click(chromedp.CSS("#signout")))
		b.until(30*time.Second, `location.pathname == "/signin"`)
		b.signIn(testenv.ReadToken)
		for _, p := range []string{"/", "/jobs", "/services", fmt.Sprintf("/jobs/%d", queued.Job)} {
			b.open(p)
			if p == "/services" {
				b.until(time.Minute, `document.querySelector(".cands td") && !document.querySelector(".cands td").textContent.startsWith("…")`)
			}
			if n := eval[int](b, `document.querySelectorAll("button[data-post], button.f-scalebtn").length`); n != 0 {
				t.Errorf("%s shows a read token %d action buttons", p, n)
			}
			// The page as the browser has it, scripts' additions included.
			html := eval[string](b, `document.documentElement.outerHTML`)
			for _, s := range []string{testenv.AdminToken, testenv.ReadToken, secret} {
				if strings.Contains(html, s) {
					t.Errorf("%s shows a secret (%.8s…)", p, s)
				}
			}
		}
		// The server refuses the action anyway, CSRF token and all.
		status := eval[int](b, fmt.Sprintf(`fetch("/api/services/%s/redeploy", {method: "POST", headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf"]').content}}).then(r => r.status)`, svc))
		if status != http.StatusForbidden {
			t.Errorf("a read session's redeploy: %d, want 403", status)
		}
	})
}
