package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPing(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		wantErr bool
	}{
		{"open registry", http.StatusOK, false},
		{"registry wanting credentials", http.StatusUnauthorized, false},
		{"not a registry", http.StatusNotFound, true},
		{"registry failing", http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				path = r.URL.Path
				w.WriteHeader(tt.code)
			}))
			defer srv.Close()
			c := New(Credentials{Host: strings.TrimPrefix(srv.URL, "http://")}, true)
			err := c.Ping(context.Background())
			if (err != nil) != tt.wantErr {
				t.Errorf("Ping() = %v, want error %v", err, tt.wantErr)
			}
			if path != "/v2/" {
				t.Errorf("pinged %q, want /v2/", path)
			}
		})
	}
	c := New(Credentials{Host: "127.0.0.1:1"}, true)
	if err := c.Ping(context.Background()); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
}
