package imageref

import (
	"go/build"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name, ref string
		want      Parts
	}{
		{"tag and digest", "127.0.0.1:5000/shop/api:main-20261126101500@sha256:abc", Parts{"127.0.0.1:5000/shop/api", "main-20261126101500", "sha256:abc"}},
		{"tag only", "127.0.0.1:5000/shop/api:main-latest", Parts{"127.0.0.1:5000/shop/api", "main-latest", ""}},
		{"digest only", "127.0.0.1:5000/shop/api@sha256:abc", Parts{"127.0.0.1:5000/shop/api", "", "sha256:abc"}},
		{"port, no tag", "reg.example:5000/shop/api", Parts{"reg.example:5000/shop/api", "", ""}},
		{"docker hub short name", "nginx", Parts{"nginx", "", ""}},
		{"docker hub short name with tag", "nginx:1.27", Parts{"nginx", "1.27", ""}},
		{"docker hub namespace", "library/nginx:1.27@sha256:def", Parts{"library/nginx", "1.27", "sha256:def"}},
		{"empty", "", Parts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.ref)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Split(%q) (-want +got):\n%s", tt.ref, diff)
			}
			if Repository(tt.ref) != got.Repository || Tag(tt.ref) != got.Tag || Digest(tt.ref) != got.Digest {
				t.Errorf("Repository, Tag, Digest of %q disagree with Split", tt.ref)
			}
		})
	}
}

func TestBuildThenSplit(t *testing.T) {
	ref := Pinned(Tagged("127.0.0.1:5000", "shop/api", "main-latest"), "sha256:abc")
	if ref != "127.0.0.1:5000/shop/api:main-latest@sha256:abc" {
		t.Fatalf("built %q", ref)
	}
	want := Parts{"127.0.0.1:5000/shop/api", "main-latest", "sha256:abc"}
	if diff := cmp.Diff(want, Split(ref)); diff != "" {
		t.Errorf("Split (-want +got):\n%s", diff)
	}
}

func TestNameIn(t *testing.T) {
	tests := []struct {
		name, ref, host, want string
		ok                    bool
	}{
		{"ours, pinned", "reg:5000/shop/api:main-1@sha256:abc", "reg:5000", "shop/api", true},
		{"ours, no tag", "reg:5000/shop/api", "reg:5000", "shop/api", true},
		{"other port", "reg:5001/shop/api:t", "reg:5000", "", false},
		{"host is a prefix of another", "reg:50000/shop/api:t", "reg:5000", "", false},
		{"docker hub", "nginx:1.27", "reg:5000", "", false},
		{"just the host", "reg:5000/", "reg:5000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NameIn(tt.ref, tt.host)
			if got != tt.want || ok != tt.ok {
				t.Errorf("NameIn(%q, %q) = %q, %v, want %q, %v", tt.ref, tt.host, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"reg:5000/a/b:t@sha256:x", "nginx", "a@b@c", "a:b:c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		p := Split(ref)
		if strings.Contains(p.Repository, "@") || strings.ContainsAny(p.Tag, "@:/") {
			t.Errorf("Split(%q) = %+v: a separator left inside a part", ref, p)
		}
		if !strings.HasPrefix(ref, p.Repository) || !strings.HasSuffix(ref, p.Digest) {
			t.Errorf("Split(%q) = %+v: parts not taken from ref", ref, p)
		}
	})
}

// TestImportsNothingOfOurs keeps the package pure: the standard library
// only, and none of its I/O.
func TestImportsNothingOfOurs(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"strings": true}
	for _, imp := range pkg.Imports {
		if !allowed[imp] {
			t.Errorf("imageref imports %s; it must stay pure (strings only)", imp)
		}
	}
}
