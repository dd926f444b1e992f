package testenv

import (
	"bytes"
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
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	conf := filepath.Join(dir, "config.yml")
	body := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(v3Bin, "serve", conf)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry v3: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("registry v3 log:\n%s", TrimLines(logs.String(), 30))
		}
	})
	Eventually(t, 20*time.Second, 100*time.Millisecond, func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("GET /v2/ answered %d", resp.StatusCode)
	})
	return addr
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
		ref, err := name.NewTag(host+"/"+repo+":"+tag, name.Insecure)
		if err != nil {
			return "", err
		}
		if err := s.p.Push(ctx, ref, img); err != nil {
			return "", fmt.Errorf("push %s: %w", ref, err)
		}
	}
	return d.String(), nil
}
