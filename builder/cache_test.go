package builder

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"
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
