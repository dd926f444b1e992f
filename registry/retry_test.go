package registry

import (
	"bytes"
	"context"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// failingRegistry is an in-memory registry that answers the next n
// requests ending in suffix with status instead.
type failingRegistry struct {
	mu       sync.Mutex
	method   string
	suffix   string
	n        int
	status   int
	failed   int
	requests int
}

func (f *failingRegistry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		fail := f.n > 0 && r.Method == f.method && strings.HasSuffix(r.URL.Path, f.suffix)
		if r.Method == f.method && strings.HasSuffix(r.URL.Path, f.suffix) {
			f.requests++
		}
		if fail {
			f.n--
			f.failed++
		}
		f.mu.Unlock()
		if fail {
			http.Error(w, http.StatusText(f.status), f.status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestRetagRetriesTransientErrors(t *testing.T) {
	tests := []struct {
		name         string
		opts         []Option
		method       string
		suffix       string
		fail, status int
		wantErr      string // "" for success
		wantAttempts int    // requests that reached the failing path
		wantLog      []string
		wantNoLog    string
	}{
		{"PUT 503 twice then works", []Option{WithRetries(2, time.Millisecond)}, http.MethodPut, "/manifests/main-latest", 2, 503, "", 3, []string{
			"move HOST/shop/api:main-latest: attempt 1 of 3 failed with a transient error, retrying in 1ms: PUT ",
			"503 Service Unavailable",
			"move HOST/shop/api:main-latest: attempt 2 of 3 failed with a transient error, retrying in 2ms",
			"move HOST/shop/api:main-latest: attempt 3 of 3 succeeded",
		}, ""},
		{"GET 502 once then works", []Option{WithRetries(2, time.Millisecond)}, http.MethodGet, "/manifests/main-1", 1, 502, "", 2, []string{
			"attempt 1 of 3 failed with a transient error, retrying in 1ms",
			"attempt 2 of 3 succeeded",
		}, ""},
		{"stays down", []Option{WithRetries(2, time.Millisecond)}, http.MethodPut, "/manifests/main-latest", 9, 503, "move HOST/shop/api:main-latest: gave up after 3 attempts", 3, []string{
			"attempt 2 of 3 failed",
		}, "attempt 3 of 3"},
		{"denied is not retried", []Option{WithRetries(2, time.Millisecond)}, http.MethodPut, "/manifests/main-latest", 9, 403, "403 Forbidden", 1, nil, "attempt"},
		{"no retries by default", nil, http.MethodPut, "/manifests/main-latest", 9, 503, "503", 1, nil, "attempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &failingRegistry{}
			srv := httptest.NewServer(f.wrap(ggcrregistry.New(ggcrregistry.Logger(stdlog.New(io.Discard, "", 0)))))
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "http://")
			img, err := random.Image(64, 1)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.NewTag(host+"/shop/api:main-1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			f.mu.Lock()
			f.method, f.suffix, f.n, f.status = tt.method, tt.suffix, tt.fail, tt.status
			f.mu.Unlock()

			c := New(Credentials{Host: host}, true, tt.opts...)
			var log bytes.Buffer
			got, err := c.Retag(context.Background(), "shop/api", "main-1", "main-latest", d.String(), &log)
			text := strings.ReplaceAll(log.String(), host, "HOST")
			if tt.wantErr == "" && (err != nil || got != d.String()) {
				t.Fatalf("Retag = %q, %v, want %s\n%s", got, err, d, text)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), host, "HOST"), tt.wantErr)) {
				t.Fatalf("Retag error %v, want one containing %q\n%s", err, tt.wantErr, text)
			}
			if f.requests != tt.wantAttempts {
				t.Errorf("%d %s requests for %s, want %d", f.requests, tt.method, tt.suffix, tt.wantAttempts)
			}
			for _, want := range tt.wantLog {
				if !strings.Contains(text, want) {
					t.Errorf("log lacks %q:\n%s", want, text)
				}
			}
			if tt.wantNoLog != "" && strings.Contains(text, tt.wantNoLog) {
				t.Errorf("log has %q:\n%s", tt.wantNoLog, text)
			}
			latest, err := c.Digest(context.Background(), "shop/api", "main-latest")
			if moved := err == nil && latest == d.String(); moved != (tt.wantErr == "") {
				t.Errorf("main-latest moved %v (%v), for a Retag that returned %v", moved, err, tt.wantErr == "")
			}
		})
	}
}
