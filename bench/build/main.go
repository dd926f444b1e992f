// Command build measures the build-and-publish step against the real
// engine and registry (see bench/README.md, "Build and publish"):
//
//	go run ./bench/build fetch    # second fetch vs fresh clone, ~50 MB of history
//	go run ./bench/build context  # peak RSS while streaming a 200 MB context to the engine
//	go run ./bench/build publish  # build finished -> both tags in the registry
//
// Each mode prints what it measured and exits non-zero if a step failed.
// The thresholds the issue sets are printed next to the numbers, not
// enforced: timings on a shared machine are for reading, not asserting.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/source"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: build fetch|context|publish [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "fetch":
		err = benchFetch(os.Args[2:])
	case "context":
		err = benchContext(os.Args[2:])
	case "publish":
		err = benchPublish(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build bench:", err)
		os.Exit(1)
	}
}

// git runs git in dir.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// randomFile writes n incompressible bytes, so Git's pack is as big as
// the history.
func randomFile(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serveGit serves the repositories under root over Git's smart HTTP
// protocol on loopback, as a Git host would.
func serveGit(root string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := &cgi.Handler{Path: "/usr/lib/git-core/git-http-backend", Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// benchFetch makes a repository whose history holds about mb MB (one
// fresh 1 MB file per commit, the previous one deleted, so the work tree
// stays small), then times a fresh mirror's checkout against a second
// checkout, after one small new commit, into the mirror already there.
func benchFetch(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	mb := fs.Int("mb", 50, "MB of history")
	rounds := fs.Int("rounds", 3, "clone/refetch pairs")
	fs.Parse(args)
	root, err := os.MkdirTemp("", "bench-fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	repo := filepath.Join(root, "app")
	os.Mkdir(repo, 0o755)
	if _, err := git(repo, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	for i := 0; i < *mb; i++ {
		os.Remove(filepath.Join(repo, fmt.Sprintf("blob-%d.bin", i-1)))
		if err := randomFile(filepath.Join(repo, fmt.Sprintf("blob-%d.bin", i)), 1<<20); err != nil {
			return err
		}
		if _, err := git(repo, "add", "-A"); err != nil {
			return err
		}
		if _, err := git(repo, "commit", "-q", "-m", strconv.Itoa(i)); err != nil {
			return err
		}
	}
	base, stop, err := serveGit(root)
	if err != nil {
		return err
	}
	defer stop()
	url := base + "/app/.git"
	ctx := context.Background()
	var clones, refetches []time.Duration
	for r := 0; r < *rounds; r++ {
		mirrors, err := source.NewMirrors(filepath.Join(root, fmt.Sprintf("mirrors-%d", r)))
		if err != nil {
			return err
		}
		head, _ := git(repo, "rev-parse", "HEAD")
		start := time.Now()
		if _, err := mirrors.Checkout(ctx, source.Repo{URL: url}, "refs/heads/main", head, filepath.Join(root, fmt.Sprintf("w-%d-a", r)), io.Discard); err != nil {
			return err
		}
		clones = append(clones, time.Since(start))
		os.WriteFile(filepath.Join(repo, "version.txt"), []byte(strconv.Itoa(r)), 0o644)
		git(repo, "add", "-A")
		git(repo, "commit", "-q", "-m", "small change")
		head, _ = git(repo, "rev-parse", "HEAD")
		start = time.Now()
		if _, err := mirrors.Checkout(ctx, source.Repo{URL: url}, "refs/heads/main", head, filepath.Join(root, fmt.Sprintf("w-%d-b", r)), io.Discard); err != nil {
			return err
		}
		refetches = append(refetches, time.Since(start))
	}
	pack, _ := exec.Command("du", "-sh", filepath.Join(repo, ".git", "objects")).Output()
	c, f := median(clones), median(refetches)
	fmt.Printf("history: %d commits of 1 MB random data; repository objects %s", *mb, pack)
	fmt.Printf("fresh clone + checkout: %v (median of %v)\n", c.Round(time.Millisecond), round(clones))
	fmt.Printf("second fetch + checkout: %v (median of %v)\n", f.Round(time.Millisecond), round(refetches))
	fmt.Printf("ratio: %.1fx (issue: >= 5x)\n", float64(c)/float64(f))
	if hwm, err := peakRSS(); err == nil {
		fmt.Printf("peak RSS (VmHWM) of this process: %d kB\n", hwm)
	}
	return nil
}

// benchContext streams a context of about mb MB of incompressible files
// to the engine, with a Dockerfile that copies one small file so the
// engine stores nearly nothing, and reports this process's peak RSS.
func benchContext(args []string) error {
	fs := flag.NewFlagSet("context", flag.ExitOnError)
	mb := fs.Int("mb", 200, "MB of context")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "bench-context-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for i := 0; i < *mb/10; i++ {
		if err := randomFile(filepath.Join(dir, fmt.Sprintf("data-%03d.bin", i)), 10<<20); err != nil {
			return err
		}
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY Dockerfile /\n"), 0o644)
	before, _ := peakRSS()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), builder.Classic)
	ref := fmt.Sprintf("bench-context/app:%d", time.Now().UnixNano())
	start := time.Now()
	if _, err := e.Build(context.Background(), builder.Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{ref}}, io.Discard); err != nil {
		return err
	}
	took := time.Since(start)
	c.ImageRemove(context.Background(), ref, imageRemoveOptions())
	after, err := peakRSS()
	if err != nil {
		return err
	}
	fmt.Printf("context: %d MB in %d files, sent in %v\n", *mb, *mb/10, took.Round(time.Millisecond))
	fmt.Printf("peak RSS (VmHWM) before the build: %d kB; after: %d kB (issue: < 60 MB)\n", before, after)
	return nil
}

// peakRSS reads this process's VmHWM in kB.
func peakRSS() (int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func round(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
