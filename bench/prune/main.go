// Command prune seeds and checks the repositories of the prune benchmark
// (see run.sh and bench/README.md):
//
//	prune seed   -registry HOST -repo REPO -state FILE [-tags 2000 -branches 5]
//	prune verify -registry HOST -repo REPO -state FILE [-keep 10]
//
// seed pushes -tags tiny distinct images as <branch>-<timestamp> over
// -branches branches (whose names contain dashes), plus <branch>-latest on
// each branch's newest, and writes every tag's digest to FILE. verify
// checks that exactly the newest -keep tags of each branch and every
// -latest remain, each still on its original digest.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/tagpolicy"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: prune seed|verify -registry HOST -repo REPO -state FILE")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	host := fs.String("registry", "127.0.0.1:5000", "registry host:port")
	repo := fs.String("repo", "", "repository")
	state := fs.String("state", "", "file of tag -> digest written by seed, read by verify")
	tags := fs.Int("tags", 2000, "timestamped tags to seed")
	branches := fs.Int("branches", 5, "branches to spread them over")
	keep := fs.Int("keep", 10, "tags per branch the prune keeps")
	workers := fs.Int("workers", 16, "pushes at once while seeding")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "seed":
		err = seed(*host, *repo, *state, *tags, *branches, *workers)
	case "verify":
		err = verify(*host, *repo, *state, *keep)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "prune bench:", err)
		os.Exit(1)
	}
}

func seed(host, repo, state string, n, branches, workers int) error {
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Duration(n) * time.Minute)
	var names [][]string
	for i := range n {
		b := fmt.Sprintf("feature-%d-x", i%branches)
		tags := []string{tagpolicy.Timestamped(b, base.Add(time.Duration(i)*time.Minute))}
		if i >= n-branches {
			tags = append(tags, tagpolicy.Latest(b)) // newest of each branch
		}
		names = append(names, tags)
	}
	s := testenv.NewSeeder()
	digests := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	errs := make(chan error, 1)
	for _, tags := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			d, err := s.Push(ctx, host, repo, tags...)
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			mu.Lock()
			for _, t := range tags {
				digests[t] = d
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	b, _ := json.Marshal(digests)
	return os.WriteFile(state, b, 0o600)
}

func verify(host, repo, state string, keep int) error {
	ctx := context.Background()
	raw, err := os.ReadFile(state)
	if err != nil {
		return err
	}
	var before map[string]string
	if err := json.Unmarshal(raw, &before); err != nil {
		return err
	}
	// Expected: -latest tags, and the newest keep of each branch.
	byBranch := map[string][]string{}
	var want []string
	for tag := range before {
		if tagpolicy.IsLatest(tag) {
			want = append(want, tag)
		} else if b, _, ok := tagpolicy.ParseTimestamped(tag); ok {
			byBranch[b] = append(byBranch[b], tag)
		}
	}
	for _, tags := range byBranch {
		slices.Sort(tags)
		want = append(want, tags[max(0, len(tags)-keep):]...)
	}
	slices.Sort(want)
	c := registry.New(registry.Credentials{Host: host}, true)
	got, err := c.Tags(ctx, repo)
	if err != nil {
		return err
	}
	slices.Sort(got)
	var wrong []string
	for _, t := range want {
		if !slices.Contains(got, t) {
			wrong = append(wrong, "deleted "+t)
		} else if d, err := c.Digest(ctx, repo, t); err != nil || d != before[t] {
			wrong = append(wrong, fmt.Sprintf("%s moved to %s (%v)", t, d, err))
		}
	}
	for _, t := range got {
		if !slices.Contains(want, t) {
			wrong = append(wrong, "left "+t)
		}
	}
	fmt.Printf("%s: %d tags before, %d after, %d expected, %d wrong\n", repo, len(before), len(got), len(want), len(wrong))
	if len(wrong) > 0 {
		return fmt.Errorf("%d wrong: %v", len(wrong), wrong[:min(10, len(wrong))])
	}
	return nil
}
