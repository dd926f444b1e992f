package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A repository decides its symlinks and its files' types: whatever it
// holds, the context, the Dockerfile and .dockerignore stay in the work
// tree and bounded.
func TestContextTarStaysInWorkTree(t *testing.T) {
	host := t.TempDir()
	writeFiles(t, host, map[string]string{"app/Dockerfile": "FROM scratch", "secret": "host secret", ".dockerignore": "*"})
	tests := []struct {
		name       string
		files      map[string]string // name -> content
		links      map[string]string // name -> target; "$HOST" is replaced
		fifos      []string
		big        string // a file larger than its limit
		context    string
		dockerfile string
		want       string   // error text; "" for success
		sent       []string // on success, what the tar holds
	}{
		{name: "context through an absolute symlink", links: map[string]string{"sub": "$HOST"}, context: "sub/app",
			want: `context "sub/app": sub is a symlink to $HOST, outside the work tree`},
		{name: "context through a relative symlink", files: map[string]string{"w/Dockerfile": "FROM scratch"}, links: map[string]string{"w/up": "../.."},
			context: "w/up", want: `context "w/up": w/up is a symlink to ../.., outside the work tree`},
		{name: "context through a chain of symlinks", files: map[string]string{"w/x": ""}, links: map[string]string{"w/a": "b/..", "w/b": "../.."},
			context: "w/a/x", want: `context "w/a/x": w/b is a symlink to ../.., outside the work tree`},
		{name: "context symlinked inside the work tree", files: map[string]string{"v2/Dockerfile": "FROM scratch", "v2/app": ""}, links: map[string]string{"current": "v2"},
			context: "current", sent: []string{"Dockerfile", "app"}},
		{name: "symlink loop", links: map[string]string{"a": "b", "b": "a"}, context: "a", want: "more than 40 symlinks"},
		{name: "dockerfile to a device", links: map[string]string{"Dockerfile": "/dev/zero"},
			want: `dockerfile "Dockerfile": Dockerfile is a symlink to /dev/zero, outside the work tree`},
		{name: "dockerfile through a symlinked directory", links: map[string]string{"d": "$HOST/app"}, dockerfile: "d/Dockerfile",
			want: `dockerfile "d/Dockerfile": d is a symlink to $HOST/app, outside the work tree`},
		{name: "dockerfile outside the context", files: map[string]string{"Dockerfile.prod": "FROM scratch", "web/x": ""}, links: map[string]string{"web/Dockerfile": "../Dockerfile.prod"},
			context: "web", want: `dockerfile "Dockerfile" resolves to Dockerfile.prod, outside the context`},
		{name: "dockerfile symlinked inside the context", files: map[string]string{"docker/prod": "FROM scratch"}, links: map[string]string{"Dockerfile": "docker/prod"},
			sent: []string{"Dockerfile -> docker/prod", "docker/prod"}},
		{name: "dockerfile a fifo", fifos: []string{"Dockerfile"}, want: `dockerfile "Dockerfile": Dockerfile is not a regular file`},
		{name: "dockerfile too large", big: "Dockerfile", want: `dockerfile "Dockerfile": Dockerfile is 4194305 bytes, more than the 4194304 allowed`},
		{name: "dockerfile is a directory", files: map[string]string{"Dockerfile/x": ""}, want: `Dockerfile is not a regular file`},
		{name: ".dockerignore to a device", files: map[string]string{"Dockerfile": "FROM scratch"}, links: map[string]string{".dockerignore": "/dev/urandom"},
			want: ".dockerignore is a symlink to /dev/urandom, outside the work tree"},
		{name: ".dockerignore to a host file", files: map[string]string{"web/Dockerfile": "FROM scratch"}, links: map[string]string{"web/.dockerignore": "$HOST/.dockerignore"},
			context: "web", want: "web/.dockerignore is a symlink to $HOST/.dockerignore, outside the work tree"},
		{name: ".dockerignore a fifo", files: map[string]string{"Dockerfile": "FROM scratch"}, fifos: []string{".dockerignore"},
			want: ".dockerignore is not a regular file"},
		{name: ".dockerignore too large", files: map[string]string{"Dockerfile": "FROM scratch"}, big: ".dockerignore",
			want: ".dockerignore is 262145 bytes, more than the 262144 allowed"},
		{name: ".dockerignore with too many patterns", files: map[string]string{"Dockerfile": "FROM scratch", ".dockerignore": strings.Repeat("a\n", maxIgnorePatterns+1)},
			want: ".dockerignore has 10001 patterns, more than the 10000 allowed"},
		{name: ".dockerignore with many comments", files: map[string]string{"Dockerfile": "FROM scratch", "a.log": "", "b": "",
			".dockerignore": strings.Repeat("# a comment\n", maxIgnorePatterns+1) + "*.log\n"}, sent: []string{".dockerignore", "Dockerfile", "b"}},
		{name: ".dockerignore symlinked inside the work tree", files: map[string]string{"ignore": "*.log\n", "web/Dockerfile": "FROM scratch", "web/a.log": "", "web/a.go": ""},
			links: map[string]string{"web/.dockerignore": "../ignore"}, context: "web", sent: []string{".dockerignore -> ../ignore", "Dockerfile", "a.go"}},
		{name: "dangling .dockerignore is none", files: map[string]string{"Dockerfile": "FROM scratch", "a.log": ""}, links: map[string]string{".dockerignore": "missing"},
			sent: []string{".dockerignore -> missing", "Dockerfile", "a.log"}},
		{name: "symlink in the context to a host file is sent as a symlink", files: map[string]string{"Dockerfile": "FROM scratch"}, links: map[string]string{"leak": "$HOST/secret"},
			sent: []string{"Dockerfile", "leak -> $HOST/secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := t.TempDir()
			writeFiles(t, tree, tt.files)
			for name, target := range tt.links {
				if err := os.Symlink(strings.ReplaceAll(target, "$HOST", host), filepath.Join(tree, name)); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range tt.fifos {
				if err := syscall.Mkfifo(filepath.Join(tree, name), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.big != "" {
				limit := maxDockerfile
				if tt.big == ".dockerignore" {
					limit = maxDockerignore
				}
				if err := os.WriteFile(filepath.Join(tree, tt.big), make([]byte, limit+1), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dockerfile := tt.dockerfile
			if dockerfile == "" {
				dockerfile = "Dockerfile"
			}
			rc, err := ContextTar(context.Background(), tree, filepath.Join(tree, tt.context), dockerfile)
			if tt.want != "" {
				if want := strings.ReplaceAll(tt.want, "$HOST", host); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			var sent []string
			for _, name := range tarNames(t, rc) {
				sent = append(sent, strings.ReplaceAll(name, host, "$HOST"))
			}
			if diff := cmp.Diff(tt.sent, sent); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContextTarRefusesEscape(t *testing.T) {
	tree := t.TempDir()
	tests := []struct{ name, context, dockerfile, want string }{
		{"dockerfile", tree, "../Dockerfile", `dockerfile "../Dockerfile" is outside the build context`},
		{"context", filepath.Dir(tree), "Dockerfile", "is outside the work tree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ContextTar(context.Background(), tree, tt.context, tt.dockerfile); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// The .dockerignore is read under the job's context: a job cancelled
// or timed out reads no further.
func TestContextTarReadsUnderContext(t *testing.T) {
	tree := t.TempDir()
	writeFiles(t, tree, map[string]string{"Dockerfile": "FROM scratch", ".dockerignore": "*.log\n"})
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("job timed out")
	cancel(cause)
	if _, err := ContextTar(ctx, tree, tree, "Dockerfile"); !errors.Is(err, cause) {
		t.Fatalf("err = %v, want %v", err, cause)
	}
}

// FuzzResolve: whatever symlinks a repository holds and whatever path is
// asked for, a resolved path is inside the work tree and has no symlink
// on it.
func FuzzResolve(f *testing.F) {
	f.Add("../..", "/etc", "a/b/x")
	f.Add("b/..", "../..", "a/x")
	f.Add(".", "a", "b/b/b")
	f.Add("b", "a", "a")
	f.Add("d/../..", "./d", "a/../b/c")
	// One tree for every input (a fuzz worker runs them one at a time),
	// its two links made anew each time.
	tree := f.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "d"), 0o755); err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"d/f", "x"} {
		if err := os.WriteFile(filepath.Join(tree, n), nil, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	root, err := os.OpenRoot(tree)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { root.Close() })
	f.Fuzz(func(t *testing.T, linkA, linkB, name string) {
		for n, target := range map[string]string{"a": linkA, "b": linkB} {
			os.Remove(filepath.Join(tree, n))
			if target == "" || strings.ContainsRune(target, 0) {
				return
			}
			if err := os.Symlink(target, filepath.Join(tree, n)); err != nil {
				t.Skip(err)
			}
		}
		got, err := resolve(root, name)
		if err != nil {
			return
		}
		if got != "." && !filepath.IsLocal(got) {
			t.Fatalf("resolve(%q) = %q, not inside the tree", name, got)
		}
		p := tree
		for c := range strings.SplitSeq(got, "/") {
			p = filepath.Join(p, c)
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatalf("resolve(%q) = %q, which does not exist: %v", name, got, err)
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				t.Fatalf("resolve(%q) = %q, which has the symlink %s on it", name, got, p)
			}
		}
	})
}
