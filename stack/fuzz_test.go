package stack

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// forbidden are keys that must never get through the allow-list,
// wherever they hide (anchors, merge keys).
var forbidden = map[string]bool{"privileged": true, "network_mode": true, "pid": true,
	"cap_add": true, "devices": true, "external": true, "env_file": true, "extends": true, "include": true}

// FuzzLoad: whatever the file, Load never panics, and a file the
// allow-list accepts holds none of the forbidden keys under services.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"services:\n  web:\n    image: nginx:1.27\n",
		"x-a: &a\n  privileged: true\nservices:\n  web:\n    image: nginx:1.27\n    <<: *a\n",
		"services:\n  web:\n    image: nginx:1.27\n    networks: {back: {aliases: [b]}}\nnetworks:\n  back: {driver: overlay}\n",
		"services:\n  web: &w\n    image: nginx:1.27\n  api: *w\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(body), &doc) != nil || len(doc.Content) == 0 {
			return
		}
		if checkKeys("c.yml", &doc) != nil {
			return
		}
		// A second opinion: yaml.v3's own decoding resolves anchors and
		// merge keys; no service may hold a forbidden key after it.
		var m struct {
			Services map[string]map[string]any `yaml:"services"`
			Networks map[string]map[string]any `yaml:"networks"`
		}
		if yaml.Unmarshal([]byte(body), &m) != nil {
			return
		}
		for name, svc := range m.Services {
			for k := range svc {
				if forbidden[k] {
					t.Fatalf("accepted service %s with %s:\n%s", name, k, body)
				}
			}
		}
		for name, n := range m.Networks {
			if _, ok := n["external"]; ok {
				t.Fatalf("accepted external network %s:\n%s", name, body)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "c.yml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		Load(context.Background(), Source{Name: "s", WorkTree: dir, File: "c.yml"})
	})
}
