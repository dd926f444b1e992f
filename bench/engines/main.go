// Command engines measures builds on several engines (see bench/README.md,
// "Several build engines"), through the same pool and builder swarmhook
// uses, against the real engines and registry:
//
//	go run ./bench/engines spread -engines HOST1,HOST2   # 4 projects at once: 2 engines vs 1
//	go run ./bench/engines cache -warm HOST1 -cold HOST2  # cold engine, registry cache vs none
//
// It prints what it measured; the targets are printed beside the
// numbers, not enforced.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/engines"
)

// dockerfile is a build with two CPU-bound steps (about what compiling a
// small service costs here) and a copy, on a base from the registry.
const dockerfile = `FROM %s
ARG NONCE
RUN echo "$NONCE" > /nonce && head -c 48000000 /dev/urandom | gzip -6 | sha256sum > /step1
RUN head -c 48000000 /dev/urandom | gzip -6 | sha256sum > /step2
COPY app.txt /app.txt
`

// noAuth is the X-Registry-Auth of a registry without credentials.
var noAuth = base64.URLEncoding.EncodeToString([]byte("{}"))

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: engines spread|cache [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	reg := fs.String("registry", "10.213.0.1:5000", "registry every engine reaches")
	base := fs.String("base", "swarmhook-test/busybox:latest", "base image on the first engine, pushed to the registry")
	list := fs.String("engines", "", "spread: comma-separated engine hosts, the first also used alone")
	warm := fs.String("warm", "unix:///var/run/docker.sock", "cache: engine that builds first and pushes -latest")
	cold := fs.String("cold", "", "cache: engine that then builds cold")
	rounds := fs.Int("rounds", 2, "rounds of each variant, alternating")
	fs.Parse(os.Args[2:])
	ns := fmt.Sprintf("bench-engines-%d", time.Now().UnixNano())
	var err error
	switch os.Args[1] {
	case "spread":
		err = spread(ns, *reg, *base, strings.Split(*list, ","), *rounds)
	case "cache":
		err = cache(ns, *reg, *base, *warm, *cold, *rounds)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "engines bench:", err)
		os.Exit(1)
	}
}

// engine is one engine's client and builder.
type engine struct {
	host string
	c    *client.Client
	b    *builder.Engine
}

func open(host string) (engine, error) {
	c, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return engine{}, err
	}
	// The classic builder, as measured in bench/README.md: its CacheFrom
	// reuses a pulled image's layers without inline cache metadata.
	return engine{host, c, builder.NewEngine(c, noAuth, builder.Classic)}, nil
}

// publishBase pushes base from e to the registry and pulls it onto every
// engine, so no variant pays for the base image.
func publishBase(ctx context.Context, e engine, base, ref string, all []engine) error {
	if err := e.c.ImageTag(ctx, base, ref); err != nil {
		return fmt.Errorf("tag base: %w", err)
	}
	if _, err := e.b.Push(ctx, ref, io.Discard); err != nil {
		return err
	}
	for _, o := range all {
		rc, err := o.c.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: noAuth})
		if err != nil {
			return fmt.Errorf("pull base on %s: %w", o.host, err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	return nil
}

// context writes a build context for project p.
func buildContext(base, p string) (string, error) {
	dir, err := os.MkdirTemp("", "bench-engines-")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), fmt.Appendf(nil, dockerfile, base), 0o644); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "app.txt"), []byte(p), 0o644)
}

// job is what swarmhook's job does with its engine: lease, build, push,
// release.
func job(ctx context.Context, pool *engines.Pool, dir, ref, nonce string, cacheFrom []string) (string, error) {
	l, err := pool.Acquire(ctx, nil)
	if err != nil {
		return "", err
	}
	defer l.Release()
	if _, err := l.Builder.Build(ctx, builder.Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{ref},
		BuildArgs: map[string]string{"NONCE": nonce}, CacheFrom: cacheFrom}, io.Discard); err != nil {
		return l.Name, fmt.Errorf("build %s on %s: %w", ref, l.Name, err)
	}
	_, err = l.Builder.Push(ctx, ref, io.Discard)
	return l.Name, err
}

func pool(es []engine) *engines.Pool {
	var pes []engines.Engine
	for _, e := range es {
		c := e.c
		pes = append(pes, engines.Engine{Name: e.host, Builder: e.b, Pruner: e.b,
			Ping: func(ctx context.Context) error { _, err := c.Ping(ctx); return err }})
	}
	return engines.New(pes, nil)
}

// spread pushes four projects at once, on the first engine alone and on
// all of them, alternately.
func spread(ns, reg, base string, hosts []string, rounds int) error {
	ctx := context.Background()
	var es []engine
	for _, h := range hosts {
		e, err := open(h)
		if err != nil {
			return err
		}
		es = append(es, e)
	}
	baseRef := reg + "/" + ns + "/base:1"
	if err := publishBase(ctx, es[0], base, baseRef, es); err != nil {
		return err
	}
	var dirs []string
	for p := range 4 {
		d, err := buildContext(baseRef, fmt.Sprint(p))
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dirs = append(dirs, d)
	}
	variants := []struct {
		name string
		es   []engine
	}{{"1 engine", es[:1]}, {fmt.Sprintf("%d engines", len(es)), es}}
	sums := map[string]time.Duration{}
	for r := range rounds {
		for _, v := range variants {
			pl := pool(v.es)
			start := time.Now()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			on := make([]string, 4)
			for p := range 4 {
				wg.Go(func() {
					ref := fmt.Sprintf("%s/%s/p%d:r%d-%s", reg, ns, p, r, strings.ReplaceAll(v.name, " ", ""))
					on[p], errs[p] = job(ctx, pl, dirs[p], ref, fmt.Sprintf("%s-%d-%s", ns, r, v.name), nil)
				})
			}
			wg.Wait()
			d := time.Since(start)
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			sums[v.name] += d
			fmt.Printf("round %d, %-9s: 4 projects built and pushed in %6.1f s (engines used: %s)\n", r+1, v.name, d.Seconds(), strings.Join(on, " "))
		}
	}
	one, many := sums[variants[0].name], sums[variants[1].name]
	fmt.Printf("mean: 1 engine %.1f s, %s %.1f s: ratio %.2f (target <= 0.6)\n",
		one.Seconds()/float64(rounds), variants[1].name, many.Seconds()/float64(rounds), many.Seconds()/one.Seconds())
	return nil
}

// cache builds on warm and pushes -latest, then builds the same on cold
// after clearing it, without and with cache-from -latest, alternately.
func cache(ns, reg, base, warmHost, coldHost string, rounds int) error {
	ctx := context.Background()
	warm, err := open(warmHost)
	if err != nil {
		return err
	}
	cold, err := open(coldHost)
	if err != nil {
		return err
	}
	baseRef := reg + "/" + ns + "/base:1"
	if err := publishBase(ctx, warm, base, baseRef, []engine{warm, cold}); err != nil {
		return err
	}
	dir, err := buildContext(baseRef, "app")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	latest := reg + "/" + ns + "/app:main-latest"
	warmPool, coldPool := pool([]engine{warm}), pool([]engine{cold})
	sums := map[bool]time.Duration{}
	for r := range rounds {
		nonce := fmt.Sprintf("%s-%d", ns, r)
		if _, err := job(ctx, warmPool, dir, latest, nonce, nil); err != nil {
			return err
		}
		for _, withCache := range []bool{false, true} {
			if err := clear(ctx, cold, reg+"/"+ns+"/app"); err != nil {
				return err
			}
			var from []string
			if withCache {
				from = []string{latest}
			}
			ref := fmt.Sprintf("%s/%s/app:r%d-%v", reg, ns, r, withCache)
			start := time.Now()
			if _, err := job(ctx, coldPool, dir, ref, nonce, from); err != nil {
				return err
			}
			d := time.Since(start)
			sums[withCache] += d
			fmt.Printf("round %d, cold engine, registry cache %-5v: built and pushed in %5.1f s\n", r+1, withCache, d.Seconds())
		}
	}
	fmt.Printf("mean: without cache %.1f s, with cache %.1f s: ratio %.2f (target <= 0.3)\n",
		sums[false].Seconds()/float64(rounds), sums[true].Seconds()/float64(rounds), sums[true].Seconds()/sums[false].Seconds())
	return nil
}

// clear removes every image of repo from e, and the layers only they
// used, so e builds as an engine that never built it.
func clear(ctx context.Context, e engine, repo string) error {
	imgs, err := e.c.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return err
	}
	for _, im := range imgs {
		for _, t := range im.RepoTags {
			if strings.HasPrefix(t, repo+":") {
				if _, err := e.c.ImageRemove(ctx, t, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
					return fmt.Errorf("remove %s on %s: %w", t, e.host, err)
				}
			}
		}
	}
	return nil
}
