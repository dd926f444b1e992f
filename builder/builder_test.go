package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarNames lists the files of a tar, sorted, a symlink as "name -> target",
// and checks each is owned by root.
func tarNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		switch h.Typeflag {
		case tar.TypeDir:
		case tar.TypeSymlink:
			names = append(names, h.Name+" -> "+h.Linkname)
		default:
			names = append(names, h.Name)
		}
	}
	slices.Sort(names)
	return names
}

func TestContextTarHonoursDockerignore(t *testing.T) {
	tests := []struct {
		name       string
		ignore     string
		dockerfile string
		want       []string
	}{
		{name: "no ignore file", dockerfile: "Dockerfile", want: []string{"Dockerfile", "app.go", "docs/a.md", "secret.env", "vendor/x/y.go"}},
		{name: "patterns and exceptions", ignore: "*.env\ndocs\n**/*.go\n!app.go\n", dockerfile: "Dockerfile", want: []string{".dockerignore", "Dockerfile", "app.go"}},
		{name: "ignoring everything keeps build files", ignore: "*\n", dockerfile: "Dockerfile", want: []string{".dockerignore", "Dockerfile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"Dockerfile": "FROM scratch", "app.go": "package main", "docs/a.md": "#", "secret.env": "X=1", "vendor/x/y.go": "package x"}
			if tt.ignore != "" {
				files[".dockerignore"] = tt.ignore
			}
			writeFiles(t, dir, files)
			rc, err := ContextTar(context.Background(), dir, dir, tt.dockerfile)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if diff := cmp.Diff(tt.want, tarNames(t, rc)); diff != "" {
				t.Errorf("context files (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeClient replays canned Engine API streams.
type fakeClient struct {
	build, push string
	gotBuild    build.ImageBuildOptions
	gotContext  []string
	images      []image.Summary
	inUse       map[string]bool // tags whose removal fails
	removed     []string
}

func (f *fakeClient) ImageList(context.Context, image.ListOptions) ([]image.Summary, error) {
	return f.images, nil
}

func (f *fakeClient) ImageRemove(_ context.Context, ref string, _ image.RemoveOptions) ([]image.DeleteResponse, error) {
	if f.inUse[ref] {
		return nil, errors.New("conflict: image is being used by running container abc")
	}
	f.removed = append(f.removed, ref)
	return nil, nil
}

func (f *fakeClient) ImageBuild(_ context.Context, ctx io.Reader, o build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	f.gotBuild = o
	var buf bytes.Buffer
	io.Copy(&buf, ctx)
	tr := tar.NewReader(&buf)
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		f.gotContext = append(f.gotContext, h.Name)
	}
	return build.ImageBuildResponse{Body: io.NopCloser(strings.NewReader(f.build))}, nil
}

func (f *fakeClient) DialHijack(context.Context, string, string, map[string][]string) (net.Conn, error) {
	return nil, errors.New("fake engine has no BuildKit")
}

func (f *fakeClient) ImagePush(context.Context, string, image.PushOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(f.push)), nil
}

func TestEngineBuildAndPushStreams(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch"})
	ctx := context.Background()

	f := &fakeClient{
		build: `{"stream":"Step 1/2 : FROM scratch\n"}{"stream":" ---> \n"}{"aux":{"ID":"sha256:abc"}}{"stream":"Successfully built abc\n"}`,
		push:  `{"status":"The push refers to repository [r/app]"}{"status":"Pushing","progressDetail":{"current":1},"id":"l1"}{"status":"Pushed","id":"l1"}{"status":"main-1: digest: sha256:def size: 528"}{"progressDetail":{},"aux":{"Tag":"main-1","Digest":"sha256:def","Size":528}}`,
	}
	e := NewEngine(f, "e30=", Classic)
	var log bytes.Buffer
	id, err := e.Build(ctx, Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{"r/app:main-1"}, BuildArgs: map[string]string{"A": "1"}}, &log)
	if err != nil || id != "sha256:abc" {
		t.Fatalf("Build = %q, %v", id, err)
	}
	if *f.gotBuild.BuildArgs["A"] != "1" || f.gotBuild.Tags[0] != "r/app:main-1" || !f.gotBuild.Remove {
		t.Errorf("build options = %+v", f.gotBuild)
	}
	if !slices.Contains(f.gotContext, "Dockerfile") {
		t.Errorf("context sent = %v", f.gotContext)
	}
	digest, err := e.Push(ctx, "r/app:main-1", &log)
	if err != nil || digest != "sha256:def" {
		t.Fatalf("Push = %q, %v", digest, err)
	}
	if strings.Contains(log.String(), "Pushing") {
		t.Errorf("progress bars should not reach the log:\n%s", log.String())
	}
	for _, want := range []string{"Step 1/2 : FROM scratch", "l1: Pushed"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

func TestEngineBuildError(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nRUN false"})
	f := &fakeClient{build: `{"stream":"Step 2/2 : RUN false\n"}{"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},"error":"The command..."}`}
	var log bytes.Buffer
	_, err := NewEngine(f, "", Classic).Build(context.Background(), Request{ContextDir: dir, Dockerfile: "Dockerfile"}, &log)
	if err == nil || !strings.Contains(err.Error(), "returned a non-zero code") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(log.String(), "returned a non-zero code") {
		t.Errorf("log lacks the build error:\n%s", log.String())
	}
}

func TestPushTransientErrors(t *testing.T) {
	tests := []struct {
		name      string
		stream    string
		transient bool
	}{
		{"503 from the registry", `{"errorDetail":{"message":"received unexpected HTTP status: 503 Service Unavailable"},"error":"x"}`, true},
		{"connection reset", `{"errorDetail":{"message":"Put http://r/v2/a/blobs/uploads/: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"},"error":"x"}`, true},
		{"denied", `{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"x"}`, false},
		{"unauthorized", `{"errorDetail":{"message":"unauthorized: authentication required"},"error":"x"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEngine(&fakeClient{push: tt.stream}, "", Classic).Push(context.Background(), "r/a:t", io.Discard)
			if err == nil {
				t.Fatal("push succeeded")
			}
			if got := errors.Is(err, ErrTransient); got != tt.transient {
				t.Errorf("transient = %v for %v", got, err)
			}
		})
	}
}

func TestPruneKeepsTheNewest(t *testing.T) {
	f := &fakeClient{
		images: []image.Summary{
			{ID: "1", Created: 100, RepoTags: []string{"r/app:main-1"}},
			{ID: "4", Created: 400, RepoTags: []string{"r/app:main-4"}},
			{ID: "2", Created: 200, RepoTags: []string{"r/app:main-2", "other/x:keep"}},
			{ID: "3", Created: 300, RepoTags: []string{"r/app:main-3"}},
			{ID: "5", Created: 500, RepoTags: []string{"r/app:main-5"}},
			{ID: "9", Created: 50, RepoTags: []string{"r/web:main-1"}},
			{ID: "0", Created: 10, RepoTags: []string{"r/app:main-0"}},
		},
		inUse: map[string]bool{"r/app:main-0": true},
	}
	var log bytes.Buffer
	n, err := NewEngine(f, "", Classic).Prune(context.Background(), "r/app", 3, &log)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(f.removed)
	if diff := cmp.Diff([]string{"r/app:main-1", "r/app:main-2"}, f.removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if n != 2 || !strings.Contains(log.String(), "keeping r/app:main-0") {
		t.Errorf("n = %d, log:\n%s", n, log.String())
	}
}

// A repository named like a registry host is not the repository of that
// registry's images: reg:5000/app:main-1 is no tag of "reg".
func TestPruneMatchesTheWholeRepository(t *testing.T) {
	f := &fakeClient{images: []image.Summary{
		{ID: "1", Created: 100, RepoTags: []string{"reg:5000/app:main-1"}},
		{ID: "2", Created: 200, RepoTags: []string{"reg:main-2"}},
	}}
	n, err := NewEngine(f, "", Classic).Prune(context.Background(), "reg", 0, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"reg:main-2"}, f.removed); diff != "" || n != 1 {
		t.Errorf("removed %d (-want +got):\n%s", n, diff)
	}
}
