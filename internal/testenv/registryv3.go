package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/swarmhook/swarmhook/imageref"
)

var (
	v3Once sync.Once
	v3Bin  string
	v3Err  error
)

// RegistryV3 starts a distribution v3 registry (which deletes tags, per
// OCI distribution-spec 1.1) on a free loopback port with deletes enabled
// and its own storage, stops it when the test ends, and returns its
// host:port. The binary comes from scripts/registry-v3.sh, which builds it
// once into a cache. Without it the test is skipped, or fails when
// CI=true.
func RegistryV3(t testing.TB) string {
	t.Helper()
	v3Once.Do(func() {
		out, err := exec.Command(filepath.Join(RepoRoot(), "scripts", "registry-v3.sh")).Output()
		if err != nil {
			v3Err = fmt.Errorf("scripts/registry-v3.sh: %w", err)
			return
		}
		v3Bin = strings.TrimSpace(string(out))
	})
	if v3Err != nil {
		msg := fmt.Sprintf("distribution v3 registry needed (run scripts/infra.sh): %v", v3Err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return startRegistry(t, v3Bin, "127.0.0.1", "", http.StatusOK)
}

// Seeder pushes tiny distinct images straight to a registry: no engine,
// no layers, one small config blob and one manifest each, so tests and
// benchmarks can fill a repository with thousands of tags in seconds. It
// is safe for concurrent use.
type Seeder struct {
	p *remote.Pusher
}

// NewSeeder returns a Seeder for open registries.
func NewSeeder() *Seeder {
	p, _ := remote.NewPusher(remote.WithAuth(authn.Anonymous))
	return &Seeder{p: p}
}

// Push writes a new image, unique by its label, to host/repo under every
// tag given, and returns its digest.
func (s *Seeder) Push(ctx context.Context, host, repo string, tags ...string) (string, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		Config: v1.Config{Labels: map[string]string{"io.swarmhook.test.seed": hex.EncodeToString(nonce)}},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	for _, tag := range tags {
		ref, err := name.NewTag(imageref.Tagged(host, repo, tag), name.Insecure)
		if err != nil {
			return "", err
		}
		if err := s.p.Push(ctx, ref, img); err != nil {
			return "", fmt.Errorf("push %s: %w", ref, err)
		}
	}
	return d.String(), nil
}
