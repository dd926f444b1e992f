package engines

import (
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/config"
)

func TestClient(t *testing.T) {
	tests := []struct {
		name     string
		b        config.BuildEngine
		wantHost string
		wantErr  string
	}{
		{"unix", config.BuildEngine{Name: "a", Host: "unix:///run/a.sock"}, "unix:///run/a.sock", ""},
		{"tcp", config.BuildEngine{Name: "a", Host: "tcp://build1:2376"}, "tcp://build1:2376", ""},
		{"ssh", config.BuildEngine{Name: "a", Host: "ssh://builder@build1"}, "http://docker.example.com", ""},
		{"tls files missing", config.BuildEngine{Name: "b", Host: "tcp://build1:2376", TLS: &config.EngineTLS{CA: "/nonexistent/ca.pem", Cert: "/nonexistent/c.pem", Key: "/nonexistent/k.pem"}}, "", "build engine b: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Client(tt.b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to start with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.DaemonHost() != tt.wantHost {
				t.Errorf("host = %q, want %q", c.DaemonHost(), tt.wantHost)
			}
		})
	}
}
