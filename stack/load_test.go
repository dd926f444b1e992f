package stack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, files)
	return dir
}

func load(t *testing.T, compose string, extra map[string]string, env map[string]string) (*Desired, error) {
	t.Helper()
	files := map[string]string{"deploy/compose.yml": compose}
	for k, v := range extra {
		files[k] = v
	}
	return Load(context.Background(), Source{Name: "shop", WorkTree: writeTree(t, files), File: "deploy/compose.yml",
		Env: env, Images: map[string]string{"shop/api": "reg:5000/shop/api:main-1@sha256:aaaa"}, Registry: "reg:5000"})
}

func TestLoadConverts(t *testing.T) {
	d, err := load(t, `
services:
  web:
    image: nginx:1.27
    environment:
      GREETING: ${GREETING}
    configs: [site]
    secrets: [token]
    deploy:
      replicas: 2
      placement:
        constraints: [node.role==manager]
  api:
    image: shop/api
    networks: [back]
networks:
  back: {}
configs:
  site:
    file: ./site.conf
secrets:
  token:
    environment: TOKEN
`, map[string]string{"deploy/site.conf": "listen 80;"}, map[string]string{"GREETING": "hi", "TOKEN": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{d.Services[0].Spec.Name, d.Services[1].Spec.Name}; got[0] != "shop_web" || got[1] != "shop_api" {
		t.Errorf("services %v, want file order shop_web, shop_api", got)
	}
	web := d.Services[0].Spec
	if env := web.TaskTemplate.ContainerSpec.Env; len(env) != 1 || env[0] != "GREETING=hi" {
		t.Errorf("env %v, want GREETING=hi", env)
	}
	if web.Labels[NamespaceLabel] != "shop" || web.TaskTemplate.ContainerSpec.Labels[NamespaceLabel] != "shop" {
		t.Errorf("labels %v, want the namespace label", web.Labels)
	}
	if img := d.Services[1].Spec.TaskTemplate.ContainerSpec.Image; img != "reg:5000/shop/api:main-1@sha256:aaaa" {
		t.Errorf("api image %s, want the job's build", img)
	}
	if n := d.Services[1].Spec.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "shop_back" {
		t.Errorf("api networks %v, want shop_back", n)
	}
	if n := web.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "shop_default" {
		t.Errorf("web networks %v, want shop_default", n)
	}
	if len(d.Configs) != 1 || !strings.HasPrefix(d.Configs[0].Name, "shop_site_") || string(d.Configs[0].Data) != "listen 80;" {
		t.Errorf("configs %+v", d.Configs)
	}
	if ref := web.TaskTemplate.ContainerSpec.Configs; len(ref) != 1 || ref[0].ConfigName != d.Configs[0].Name {
		t.Errorf("web's config refs %+v, want %s", ref, d.Configs[0].Name)
	}
	if len(d.Secrets) != 1 || string(d.Secrets[0].Data) != "s3cret" {
		t.Errorf("secret not read from the target's env")
	}
}

func TestConfigNameFollowsContent(t *testing.T) {
	file := "services:\n  web:\n    image: nginx:1.27\n    configs: [site]\nconfigs:\n  site:\n    file: site.conf\n"
	a, err := load(t, file, map[string]string{"deploy/site.conf": "v1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := load(t, file, map[string]string{"deploy/site.conf": "v2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Configs[0].Name == b.Configs[0].Name {
		t.Errorf("changed content kept the name %s", a.Configs[0].Name)
	}
}

// TestLoadRefuses: what an untrusted repository must not get through,
// each refused naming what and, where the parser knows it, the line.
func TestLoadRefuses(t *testing.T) {
	svc := func(extra string) string { return "services:\n  web:\n    image: nginx:1.27\n" + extra }
	tests := []struct {
		name, file string
		extra      map[string]string
		want       string
	}{
		{"syntax", "services:\n  web: [\n", nil, "compose.yml: yaml: line 2"},
		{"unknown key", svc("    imagee: x\n"), nil, "compose.yml:4: services.web.imagee is not allowed"},
		{"bind mount", svc("    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n"), nil, "compose.yml:4: services.web: volumes: bind mount of \"/var/run/docker.sock\" is not allowed"},
		{"relative bind mount", svc("    volumes: ['./:/src']\n"), nil, "bind mount"},
		{"long bind mount", svc("    volumes: [{type: bind, source: /, target: /host}]\n"), nil, "bind mount of \"/\""},
		{"undeclared volume", svc("    volumes: ['data:/data']\n"), nil, "refers to undefined volume data"},
		{"volume driver options", svc("volumes:\n  data:\n    driver_opts: {type: none, o: bind, device: /}\n"), nil, ":6: volumes.data.driver_opts is not allowed"},
		{"external volume", svc("volumes:\n  data:\n    external: true\n"), nil, "volumes.data.external is not allowed"},
		{"volume bind options", svc("    volumes: [{type: volume, source: d, target: /d, bind: {propagation: shared}}]\n"), nil, "services.web.volumes.bind is not allowed"},
		{"privileged", svc("    privileged: true\n"), nil, ":4: services.web.privileged"},
		{"host network", svc("    network_mode: host\n"), nil, ":4: services.web.network_mode"},
		{"host pid", svc("    pid: host\n"), nil, "services.web.pid"},
		{"cap_add", svc("    cap_add: [SYS_ADMIN]\n"), nil, "services.web.cap_add"},
		{"devices", svc("    devices: ['/dev/sda:/dev/sda']\n"), nil, "services.web.devices"},
		{"env_file reads swarmhook's host", svc("    env_file: /etc/shadow\n"), nil, "services.web.env_file"},
		{"external network", svc("networks:\n  ingress:\n    external: true\n"), nil, ":6: networks.ingress.external"},
		{"named network", svc("networks:\n  x:\n    name: other_net\n"), nil, "networks.x.name"},
		{"external config", svc("configs:\n  c:\n    external: true\n"), nil, "configs.c.external"},
		{"host network driver", svc("networks:\n  x:\n    driver: host\n"), nil, "compose.yml:6: networks.x.driver \"host\": only overlay"},
		{"merge key smuggles", "x-bad: &bad\n  privileged: true\nservices:\n  web:\n    image: nginx:1.27\n    <<: *bad\n", nil, "services.web.privileged"},
		{"config file outside", svc("    configs: [c]\nconfigs:\n  c:\n    file: ../../../etc/passwd\n"), nil, "not a path inside"},
		{"config file symlink out", svc("    configs: [c]\nconfigs:\n  c:\n    file: link\n"), map[string]string{}, "link"},
		{"other registry image", "services:\n  web:\n    image: reg:5000/other/app:1\n", nil, "none of the project's images"},
		{"no tag", "services:\n  web:\n    image: nginx\n", nil, "compose.yml:3: services.web: image nginx names no tag"},
		{"loader type error gets its line", svc("    deploy:\n      replicas: abc\n"), nil, "compose.yml:5: error while interpolating services.web.deploy.replicas"},
		{"secret from swarmhook's env", svc("    secrets: [s]\nsecrets:\n  s:\n    environment: HOME\n"), nil, "HOME is not set"},
		{"update_config", svc("    deploy:\n      update_config: {parallelism: 5}\n"), nil, "services.web.deploy.update_config"},
		{"unset variable", "services:\n  web:\n    image: nginx:${TAG:?TAG is required}\n", nil, "TAG is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.file, tt.extra, map[string]string{})
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadRefusesSymlinkOut(t *testing.T) {
	dir := writeTree(t, map[string]string{"compose.yml": "services:\n  web:\n    image: nginx:1.27\n    configs: [c]\nconfigs:\n  c:\n    file: link\n"})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := Load(context.Background(), Source{Name: "s", WorkTree: dir, File: "compose.yml"})
	if err == nil || !strings.Contains(err.Error(), "link") {
		t.Fatalf("error %v, want the symlink out of the work tree refused", err)
	}
}

func TestLoadBoundsTheFile(t *testing.T) {
	dir := writeTree(t, map[string]string{"compose.yml": "x-pad: " + strings.Repeat("a", MaxFileBytes) + "\n"})
	_, err := Load(context.Background(), Source{Name: "s", WorkTree: dir, File: "compose.yml"})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v, want the size bound", err)
	}
	var re *RefusedError
	if errors.As(err, &re) {
		t.Errorf("a size error is not a refused key")
	}
}

// TestErrorsHideEnvValues: a file that puts an env value where the
// loader reports it gets *** in the error, which reaches job records.
func TestErrorsHideEnvValues(t *testing.T) {
	_, err := load(t, "services:\n  web:\n    image: nginx:1.27\n    deploy:\n      replicas: ${TOKEN}\n", nil, map[string]string{"TOKEN": "hunter22"})
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want a *FileError", err)
	}
	t.Log(err)
	if strings.Contains(err.Error(), "hunter22") {
		t.Errorf("error %q shows the env value", err)
	}
}

func TestLoadNamedVolume(t *testing.T) {
	d, err := load(t, "services:\n  db:\n    image: postgres:17\n    volumes: ['data:/var/lib/postgresql/data', {type: tmpfs, target: /tmp}]\nvolumes:\n  data: {}\n", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := d.Services[0].Spec.TaskTemplate.ContainerSpec.Mounts
	if len(m) != 2 || m[0].Source != "shop_data" || m[0].Type != "volume" || m[0].VolumeOptions.Labels[NamespaceLabel] != "shop" || m[1].Type != "tmpfs" {
		t.Errorf("mounts %+v, want volume shop_data labelled with the stack and a tmpfs", m)
	}
}

func TestEnvFileErrorsHideValues(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"unterminated quote", "A=ok\nDB_PASSWORD=\"hunter22-secret\n"},
		{"bad variable name", "A=ok\nDB PASS WORD=hunter22-secret\n"},
		{"bad character in name", "A=ok\nDB*PASSWORD=hunter22-secret\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "prod.env")
			if err := os.WriteFile(name, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadEnvFile(name)
			if err == nil {
				t.Fatal("a malformed env file was read")
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Errorf("error %q shows the file's text", err)
			}
			if !strings.Contains(err.Error(), "line ") || !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name the file and the line", err)
			}
		})
	}
}
