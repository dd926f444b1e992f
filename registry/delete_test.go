package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

// TestDeleteTag runs on Debian's docker-registry 2.8, which cannot delete
// tags (a manifest DELETE by digest takes every tag on it along), and on
// distribution v3, which can. On both, deleting one tag must leave every
// other tag on the same manifest in place.
func TestDeleteTag(t *testing.T) {
	testenv.Require(t)
	tests := []struct {
		name string
		host func(t *testing.T) string
		want registry.TagDeletion
	}{
		{"docker-registry 2.8", func(*testing.T) string { return testenv.Registry() }, registry.DeleteByUntag},
		{"distribution v3", func(t *testing.T) string { return testenv.RegistryV3(t) }, registry.DeleteByTag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			host := tt.host(t)
			repo := testenv.Unique("swarmhook-test/delete-")
			seed := testenv.NewSeeder()
			shared, err := seed.Push(ctx, host, repo, "main-20260101000000", "main-20260102000000", "main-latest")
			if err != nil {
				t.Fatal(err)
			}
			alone, err := seed.Push(ctx, host, repo, "main-20260103000000")
			if err != nil {
				t.Fatal(err)
			}
			c := registry.New(registry.Credentials{Host: host}, true)
			mode, err := c.TagDeletion(ctx, repo)
			if err != nil || mode != tt.want {
				t.Fatalf("TagDeletion = %q, %v; want %q", mode, err, tt.want)
			}

			// A tag whose manifest other tags share.
			if err := c.DeleteTag(ctx, repo, "main-20260101000000", shared, false); err != nil {
				t.Fatal(err)
			}
			// A tag alone on its manifest.
			if err := c.DeleteTag(ctx, repo, "main-20260103000000", alone, true); err != nil {
				t.Fatal(err)
			}
			for tag, want := range map[string]string{"main-20260102000000": shared, "main-latest": shared} {
				if got, err := c.Digest(ctx, repo, tag); err != nil || got != want {
					t.Errorf("%s after delete: %s, %v; want %s", tag, got, err, want)
				}
			}
			for _, tag := range []string{"main-20260101000000", "main-20260103000000"} {
				if _, err := c.Digest(ctx, repo, tag); !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("%s still resolves after delete: %v", tag, err)
				}
			}
			tags, err := c.Tags(ctx, repo)
			if err != nil || len(tags) != 2 {
				t.Errorf("tags left = %v, %v; want the two on the shared manifest", tags, err)
			}
			// Deleting again is not an error; a moved tag is refused.
			if err := c.DeleteTag(ctx, repo, "main-20260101000000", shared, false); err != nil {
				t.Errorf("second delete: %v", err)
			}
			if err := c.DeleteTag(ctx, repo, "main-latest", alone, false); !errors.Is(err, registry.ErrTagMoved) {
				t.Errorf("delete with a stale digest: %v, want ErrTagMoved", err)
			}
		})
	}
}
