package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/registry"
)

func imageRemoveOptions() image.RemoveOptions {
	return image.RemoveOptions{Force: true, PruneChildren: true}
}

// benchPublish times what follows a finished build, for an image whose
// layers the registry already has (each round only changes a label, as
// a rebuild of an unchanged commit does): swarmhook's way, one engine
// push of the timestamped tag and a manifest PUT for -latest, against
// pushing both tags through the engine.
func benchPublish(args []string) error {
	fs := flag.NewFlagSet("publish", flag.ExitOnError)
	rounds := fs.Int("rounds", 10, "builds to publish")
	host := fs.String("registry", "127.0.0.1:5000", "registry host:port")
	base := fs.String("base", "swarmhook-test/busybox:latest", "base image")
	fs.Parse(args)
	ctx := context.Background()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), builder.Classic)
	reg := registry.New(registry.Credentials{Host: *host}, true)
	repo := fmt.Sprintf("bench-publish-%d/app", time.Now().Unix())
	dir, err := os.MkdirTemp("", "bench-publish-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	build := func(n int, tags ...string) error {
		df := fmt.Sprintf("FROM %s\nLABEL bench.round=%d\n", *base, n)
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			return err
		}
		_, err := e.Build(ctx, builder.Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: tags}, io.Discard)
		return err
	}
	defer func() {
		imgs, _ := c.ImageList(ctx, image.ListOptions{})
		for _, im := range imgs {
			for _, t := range im.RepoTags {
				if len(t) > len(*host)+len(repo) && t[:len(*host)+1+len(repo)] == *host+"/"+repo {
					c.ImageRemove(ctx, t, imageRemoveOptions())
				}
			}
		}
	}()
	// Warm up: the base layers reach the registry once.
	warm := *host + "/" + repo + ":warm"
	if err := build(-1, warm); err != nil {
		return err
	}
	if _, err := e.Push(ctx, warm, io.Discard); err != nil {
		return err
	}

	var ours, both, pushes, retags []time.Duration
	for n := 0; n < *rounds; n++ {
		tag := fmt.Sprintf("main-%d", n)
		ref := imageref.Tagged(*host, repo, tag)
		if err := build(n, ref); err != nil {
			return err
		}
		start := time.Now()
		digest, err := e.Push(ctx, ref, io.Discard)
		if err != nil {
			return err
		}
		pushed := time.Now()
		if _, err := reg.Retag(ctx, repo, tag, "main-latest", digest, io.Discard); err != nil {
			return err
		}
		ours = append(ours, time.Since(start))
		pushes, retags = append(pushes, pushed.Sub(start)), append(retags, time.Since(pushed))

		// The alternative: both tags through the engine.
		tag2 := fmt.Sprintf("alt-%d", n)
		ref2, latest2 := imageref.Tagged(*host, repo, tag2), imageref.Tagged(*host, repo, "alt-latest")
		if err := build(1000+n, ref2, latest2); err != nil {
			return err
		}
		start = time.Now()
		if _, err := e.Push(ctx, ref2, io.Discard); err != nil {
			return err
		}
		if _, err := e.Push(ctx, latest2, io.Discard); err != nil {
			return err
		}
		both = append(both, time.Since(start))
	}
	fmt.Printf("build finished -> both tags in the registry, layers already there, %d rounds\n", *rounds)
	fmt.Printf("swarmhook (engine push + manifest PUT): median %v, max %v %v (issue: < 100 ms)\n", median(ours).Round(time.Millisecond), slicesMax(ours).Round(time.Millisecond), round(ours))
	fmt.Printf("  of which engine push: median %v; -latest manifest GET+PUT: median %v\n", median(pushes).Round(time.Millisecond), median(retags).Round(100*time.Microsecond))
	fmt.Printf("both tags pushed by the engine:         median %v, max %v %v\n", median(both).Round(time.Millisecond), slicesMax(both).Round(time.Millisecond), round(both))
	fmt.Printf("ratio: %.2fx\n", float64(median(both))/float64(median(ours)))
	return nil
}

func slicesMax(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
