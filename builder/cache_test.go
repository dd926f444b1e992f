package builder

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/session/auth"

	"github.com/swarmhook/swarmhook/registry"
)

// ImagePull pulls any ref but those naming "missing", which the
// registry does not have.
func (f *fakeClient) ImagePull(_ context.Context, ref string, _ image.PullOptions) (io.ReadCloser, error) {
	if strings.Contains(ref, "missing") {
		return io.NopCloser(strings.NewReader(`{"errorDetail":{"message":"manifest for ` + ref + ` not found"},"error":"manifest unknown"}`)), nil
	}
	return io.NopCloser(strings.NewReader(`{"status":"Pulling from r/app","id":"main-latest"}{"status":"Digest: sha256:aa"}`)), nil
}

func TestBuildCachesFromWhatItCouldPull(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch"})
	f := &fakeClient{build: `{"aux":{"ID":"sha256:abc"}}`}
	var log bytes.Buffer
	_, err := NewEngine(f, "", Classic).Build(context.Background(), Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{"r/app:main-2"},
		CacheFrom: []string{"r/app:main-latest", "r/missing:main-latest"}}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"r/app:main-latest"}, f.gotBuild.CacheFrom); diff != "" {
		t.Errorf("CacheFrom (-want +got):\n%s", diff)
	}
	for _, want := range []string{"build cache from r/app:main-latest", "no build cache from r/missing:main-latest: manifest for r/missing:main-latest not found"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// TestBuildKitCachesFromTheRegistry: a BuildKit build hands CacheFrom to
// the engine as it is, nothing pulled first, and writes its inline cache
// exactly when it has CacheFrom, unless the build args decide already.
func TestBuildKitCachesFromTheRegistry(t *testing.T) {
	one, zero := "1", "0"
	tests := []struct {
		name      string
		req       Request
		wantCache []string
		wantArgs  map[string]*string
	}{
		{"no cache-from", Request{BuildArgs: map[string]string{"A": "a"}},
			nil, map[string]*string{"A": ptr("a")}},
		{"cache-from", Request{BuildArgs: map[string]string{"A": "a"}, CacheFrom: []string{"r/app:main-latest"}},
			[]string{"r/app:main-latest"}, map[string]*string{"A": ptr("a"), InlineCacheArg: &one}},
		{"inline cache turned off by a build arg", Request{BuildArgs: map[string]string{InlineCacheArg: "0"}, CacheFrom: []string{"r/app:main-latest"}},
			[]string{"r/app:main-latest"}, map[string]*string{InlineCacheArg: &zero}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildKitOptions(tt.req, "Dockerfile", "sid")
			if diff := cmp.Diff(tt.wantCache, got.CacheFrom); diff != "" {
				t.Errorf("CacheFrom (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantArgs, got.BuildArgs); diff != "" {
				t.Errorf("BuildArgs (-want +got):\n%s", diff)
			}
			if got.Version != build.BuilderBuildKit || got.SessionID != "sid" || got.Dockerfile != "Dockerfile" {
				t.Errorf("options %+v, want a BuildKit build of Dockerfile from session sid", got)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestRegistryAuthAnswersOnlyItsRegistry: the session gives the engine
// the push credentials for their registry, an identity token as the
// secret alone, and nothing for another host.
func TestRegistryAuthAnswersOnlyItsRegistry(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		creds      registry.Credentials
		host       string
		wantUser   string
		wantSecret string
	}{
		{"password", registry.Credentials{Host: "reg.example:5000", Username: "u", Password: "p"}, "reg.example:5000", "u", "p"},
		{"identity token", registry.Credentials{Host: "reg.example:5000", Username: "u", IdentityToken: "tok"}, "reg.example:5000", "", "tok"},
		{"another host", registry.Credentials{Host: "reg.example:5000", Username: "u", Password: "p"}, "registry-1.docker.io", "", ""},
		{"no credentials", registry.Credentials{Host: "reg.example:5000"}, "reg.example:5000", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newRegistryAuth(tt.creds.EngineAuth())
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Credentials(ctx, &auth.CredentialsRequest{Host: tt.host})
			if err != nil || got.Username != tt.wantUser || got.Secret != tt.wantSecret {
				t.Errorf("Credentials(%s) = %q, %q, %v; want %q, %q", tt.host, got.GetUsername(), got.GetSecret(), err, tt.wantUser, tt.wantSecret)
			}
		})
	}
	if _, err := newRegistryAuth("not base64 json!"); err == nil {
		t.Error("a malformed X-Registry-Auth was accepted")
	}
}
