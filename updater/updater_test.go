package updater

import "testing"

func TestRefParts(t *testing.T) {
	tests := []struct{ ref, repo, tag, digest string }{
		{"127.0.0.1:5000/shop/api:main-20261126101500@sha256:abc", "127.0.0.1:5000/shop/api", "main-20261126101500", "sha256:abc"},
		{"127.0.0.1:5000/shop/api:main-latest", "127.0.0.1:5000/shop/api", "main-latest", ""},
		{"127.0.0.1:5000/shop/api@sha256:abc", "127.0.0.1:5000/shop/api", "", "sha256:abc"},
		{"nginx", "nginx", "", ""},
	}
	for _, tt := range tests {
		if got := Repository(tt.ref); got != tt.repo {
			t.Errorf("Repository(%q) = %q, want %q", tt.ref, got, tt.repo)
		}
		if got := Tag(tt.ref); got != tt.tag {
			t.Errorf("Tag(%q) = %q, want %q", tt.ref, got, tt.tag)
		}
		if got := Digest(tt.ref); got != tt.digest {
			t.Errorf("Digest(%q) = %q, want %q", tt.ref, got, tt.digest)
		}
	}
}
