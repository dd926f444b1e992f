package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

func TestIsTransient(t *testing.T) {
	var calls atomic.Int32
	status := map[string]int{"/v2/five/manifests/t": 503, "/v2/four/manifests/t": 404, "/v2/auth/manifests/t": 401}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path == "/v2/" {
			return
		}
		w.WriteHeader(status[r.URL.Path])
	}))
	defer srv.Close()
	c := New(Credentials{Host: strings.TrimPrefix(srv.URL, "http://")}, true)
	tests := []struct {
		repo string
		want bool
	}{
		{"five", true},
		{"four", false},
		{"auth", false},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			calls.Store(0)
			_, err := c.Digest(context.Background(), tt.repo, "t")
			if err == nil {
				t.Fatal("no error")
			}
			if got := IsTransient(err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", err, got, tt.want)
			}
			if n := calls.Load(); n > 2 {
				t.Errorf("%d requests: the client retried by itself, hiding attempts from the job log", n)
			}
		})
	}
	for _, err := range []error{fmt.Errorf("x: %w", syscall.ECONNRESET), &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}} {
		if !IsTransient(err) {
			t.Errorf("IsTransient(%v) = false", err)
		}
	}
	if IsTransient(errors.New("manifest invalid")) {
		t.Error("a plain error is not transient")
	}
}

func TestDockerConfigCredentials(t *testing.T) {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci:pa55word"))
	cfg := fmt.Sprintf(`{"auths": {"reg.example.com:5000": {"auth": %q}}}`, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	ctx := context.Background()
	tests := []struct {
		name     string
		in       Credentials
		wantUser string
		wantPass string
	}{
		{"from the docker config", Credentials{Host: "reg.example.com:5000"}, "ci", "pa55word"},
		{"config wins", Credentials{Host: "reg.example.com:5000", Username: "u", Password: "p"}, "u", "p"},
		{"unknown host is anonymous", Credentials{Host: "other.example.com"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DockerConfigCredentials(ctx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Username != tt.wantUser || got.Password != tt.wantPass {
				t.Errorf("got %s/%q", got.Username, got.Password)
			}
			if strings.Contains(got.String(), "pa55word") {
				t.Errorf("String shows the password: %s", got)
			}
		})
	}
}

// References built for the registry are validated where they are built:
// imageref only joins and splits.
func TestTagReferences(t *testing.T) {
	tests := []struct {
		name, host, repo, tag string
		insecure              bool
		want                  string // "" when refused
		scheme                string
	}{
		{"insecure host and port", "reg.example:5000", "shop/api", "main-latest", true, "reg.example:5000/shop/api:main-latest", "http"},
		{"secure host", "reg.example", "shop/api", "main-1", false, "reg.example/shop/api:main-1", "https"},
		{"loopback is plain HTTP either way", "127.0.0.1:5000", "shop/api", "t", false, "127.0.0.1:5000/shop/api:t", "http"},
		{"uppercase name refused", "reg.example", "Shop/api", "t", false, "", ""},
		{"empty tag refused", "reg.example", "shop/api", "", false, "", ""},
		{"tag with a slash refused", "reg.example", "shop/api", "a/b", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(Credentials{Host: tt.host}, tt.insecure).tag(tt.repo, tt.tag)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("tag(%q, %q) = %s, want an error", tt.repo, tt.tag, got)
				}
				return
			}
			if err != nil || got.String() != tt.want || got.Registry.Scheme() != tt.scheme {
				t.Errorf("tag(%q, %q) = %s (%s), %v, want %s (%s)", tt.repo, tt.tag, got, got.Registry.Scheme(), err, tt.want, tt.scheme)
			}
		})
	}
}
