package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"

	"github.com/swarmhook/swarmhook/imageref"
)

// NamespaceLabel marks everything of a stack, as docker stack deploy
// does, so stacks it created are adopted and the other way round.
const NamespaceLabel = "com.docker.stack.namespace"

// imageLabel keeps the image the file names, as docker stack deploy does.
const imageLabel = "com.docker.stack.image"

// objectLabel names the config or secret key in the file that an
// object's hashed name stands for.
const objectLabel = "io.swarmhook.stack.object"

// Desired is a stack as its file describes it, converted to Swarm specs.
type Desired struct {
	// Name is the stack's namespace.
	Name string
	// Services in file order.
	Services []Service
	// Networks, Configs and Secrets by full name (<stack>_<key>, configs
	// and secrets with a hash of their content after it).
	Networks []Network
	Configs  []Object
	Secrets  []Object
}

// Service is one service of a stack file.
type Service struct {
	// Key is its name in the file; Spec.Name is <stack>_<key>.
	Key  string
	Spec swarm.ServiceSpec
}

// Network is a network the stack creates.
type Network struct {
	Name       string
	Driver     string
	Attachable bool
	Internal   bool
	Labels     map[string]string
}

// Object is a config or a secret. Data of a secret never leaves this
// package but to the engine.
type Object struct {
	Key    string
	Name   string
	Labels map[string]string
	Data   []byte `json:"-"`
}

var validKey = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// convert turns a loaded project into Swarm specs named and labelled in
// src.Name's namespace. read reads a file next to the stack file.
func convert(src Source, p *types.Project, order []string, read func(string) ([]byte, error)) (*Desired, error) {
	d := &Desired{Name: src.Name}
	ns := func(key string) string { return src.Name + "_" + key }
	labels := func(in map[string]string) map[string]string {
		out := maps.Clone(in)
		if out == nil {
			out = map[string]string{}
		}
		out[NamespaceLabel] = src.Name
		return out
	}

	netNames := slices.Sorted(maps.Keys(p.Networks))
	for _, k := range netNames {
		n := p.Networks[k]
		if !validKey.MatchString(k) {
			return nil, fmt.Errorf("networks.%s: not a valid name", k)
		}
		if n.Driver != "" && n.Driver != "overlay" {
			return nil, fmt.Errorf("networks.%s.driver %q: only overlay networks are allowed", k, n.Driver)
		}
		d.Networks = append(d.Networks, Network{Name: ns(k), Driver: "overlay", Attachable: n.Attachable, Internal: n.Internal, Labels: labels(n.Labels)})
	}

	configs := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(p.Configs)) {
		o, err := object(src.Name, k, types.FileObjectConfig(p.Configs[k]), nil, read)
		if err != nil {
			return nil, fmt.Errorf("configs.%s: %w", k, err)
		}
		configs[k] = o.Name
		d.Configs = append(d.Configs, o)
	}
	secrets := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(p.Secrets)) {
		o, err := object(src.Name, k, types.FileObjectConfig(p.Secrets[k]), src.Env, read)
		if err != nil {
			return nil, fmt.Errorf("secrets.%s: %w", k, err)
		}
		secrets[k] = o.Name
		d.Secrets = append(d.Secrets, o)
	}

	needDefault := false
	for _, key := range order {
		sc, ok := p.Services[key]
		if !ok {
			continue
		}
		if !validKey.MatchString(key) {
			return nil, fmt.Errorf("services.%s: not a valid name", key)
		}
		spec, usesDefault, err := serviceSpec(src, sc, ns, labels, configs, secrets, p.Volumes)
		if err != nil {
			return nil, fmt.Errorf("services.%s: %w", key, err)
		}
		needDefault = needDefault || usesDefault
		d.Services = append(d.Services, Service{Key: key, Spec: spec})
	}
	if needDefault && !slices.Contains(netNames, "default") {
		d.Networks = append(d.Networks, Network{Name: ns("default"), Driver: "overlay", Labels: labels(nil)})
	}
	return d, nil
}

// object reads a config's or secret's content (from a file next to the
// stack file, inline content, or for secrets a value of env) and names
// it <stack>_<key>_<12 hex of its SHA-256>: Swarm cannot change a
// config, so a new content is a new object.
func object(stack, key string, c types.FileObjectConfig, env map[string]string, read func(string) ([]byte, error)) (Object, error) {
	if !validKey.MatchString(key) {
		return Object{}, fmt.Errorf("not a valid name")
	}
	var data []byte
	switch {
	case c.File != "":
		b, err := read(c.File)
		if err != nil {
			return Object{}, err
		}
		data = b
	case c.Environment != "" && env != nil:
		v, ok := env[c.Environment]
		if !ok {
			return Object{}, fmt.Errorf("environment %s is not set in the deploy target's env", c.Environment)
		}
		data = []byte(v)
	case c.Content != "" && env == nil:
		data = []byte(c.Content)
	default:
		return Object{}, fmt.Errorf("needs file:%s", map[bool]string{true: " or environment:", false: " or content:"}[env != nil])
	}
	sum := sha256.Sum256(data)
	l := maps.Clone(map[string]string(c.Labels))
	if l == nil {
		l = map[string]string{}
	}
	l[NamespaceLabel] = stack
	l[objectLabel] = key
	return Object{Key: key, Name: stack + "_" + key + "_" + hex.EncodeToString(sum[:6]), Labels: l, Data: data}, nil
}

// serviceSpec converts one service; usesDefault says it joins the
// stack's default network.
func serviceSpec(src Source, sc types.ServiceConfig, ns func(string) string, labels func(map[string]string) map[string]string,
	configs, secrets map[string]string, volumes types.Volumes) (swarm.ServiceSpec, bool, error) {
	image, err := mapImage(src, sc.Image)
	if err != nil {
		return swarm.ServiceSpec{}, false, err
	}
	cs := &swarm.ContainerSpec{
		Image:    image,
		Labels:   labels(sc.Labels),
		Command:  sc.Entrypoint,
		Args:     sc.Command,
		Hostname: sc.Hostname,
		Dir:      sc.WorkingDir,
		User:     sc.User,
		ReadOnly: sc.ReadOnly,
		Init:     sc.Init,
	}
	if sc.StopSignal != "" {
		cs.StopSignal = sc.StopSignal
	}
	if sc.StopGracePeriod != nil {
		g := time.Duration(*sc.StopGracePeriod)
		cs.StopGracePeriod = &g
	}
	for _, k := range slices.Sorted(maps.Keys(sc.Environment)) {
		if v := sc.Environment[k]; v != nil {
			cs.Env = append(cs.Env, k+"="+*v)
		}
	}
	if hc := sc.HealthCheck; hc != nil {
		cs.Healthcheck = healthcheck(hc)
	}
	for _, r := range sc.Configs {
		full, ok := configs[r.Source]
		if !ok {
			return swarm.ServiceSpec{}, false, fmt.Errorf("config %q is not defined in the file", r.Source)
		}
		f, err := fileTarget(types.FileReferenceConfig(r), "/"+r.Source)
		if err != nil {
			return swarm.ServiceSpec{}, false, err
		}
		cs.Configs = append(cs.Configs, &swarm.ConfigReference{File: f, ConfigName: full})
	}
	for _, r := range sc.Secrets {
		full, ok := secrets[r.Source]
		if !ok {
			return swarm.ServiceSpec{}, false, fmt.Errorf("secret %q is not defined in the file", r.Source)
		}
		f, err := fileTarget(types.FileReferenceConfig(r), r.Source)
		if err != nil {
			return swarm.ServiceSpec{}, false, err
		}
		cs.Secrets = append(cs.Secrets, &swarm.SecretReference{File: (*swarm.SecretReferenceFileTarget)(f), SecretName: full})
	}

	for _, v := range sc.Volumes {
		m, err := volumeMount(v, ns, labels, volumes)
		if err != nil {
			return swarm.ServiceSpec{}, false, err
		}
		cs.Mounts = append(cs.Mounts, m)
	}

	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: ns(sc.Name)},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: cs},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP},
	}
	var deployLabels map[string]string
	replicas := uint64(1)
	global := false
	if dc := sc.Deploy; dc != nil {
		deployLabels = dc.Labels
		switch dc.Mode {
		case "", "replicated":
		case "global":
			global = true
		default:
			return swarm.ServiceSpec{}, false, fmt.Errorf("deploy.mode %q: want replicated or global", dc.Mode)
		}
		if dc.Replicas != nil {
			if *dc.Replicas < 0 {
				return swarm.ServiceSpec{}, false, fmt.Errorf("deploy.replicas is negative")
			}
			replicas = uint64(*dc.Replicas)
		}
		if dc.EndpointMode == "dnsrr" {
			spec.EndpointSpec.Mode = swarm.ResolutionModeDNSRR
		}
		spec.TaskTemplate.Resources = resources(dc.Resources)
		if rp := dc.RestartPolicy; rp != nil {
			spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyCondition(rp.Condition),
				Delay: (*time.Duration)(rp.Delay), MaxAttempts: rp.MaxAttempts, Window: (*time.Duration)(rp.Window)}
		}
		pl := dc.Placement
		if len(pl.Constraints) > 0 || len(pl.Preferences) > 0 || pl.MaxReplicas > 0 {
			spec.TaskTemplate.Placement = &swarm.Placement{Constraints: pl.Constraints, MaxReplicas: pl.MaxReplicas}
			for _, p := range pl.Preferences {
				spec.TaskTemplate.Placement.Preferences = append(spec.TaskTemplate.Placement.Preferences,
					swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: p.Spread}})
			}
		}
	}
	spec.Labels = labels(deployLabels)
	spec.Labels[imageLabel] = sc.Image
	if global {
		spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	} else {
		spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}
	}
	for _, p := range sc.Ports {
		pc, err := port(p)
		if err != nil {
			return swarm.ServiceSpec{}, false, err
		}
		spec.EndpointSpec.Ports = append(spec.EndpointSpec.Ports, pc)
	}

	usesDefault := len(sc.Networks) == 0
	nets := sc.Networks
	if usesDefault {
		nets = map[string]*types.ServiceNetworkConfig{"default": nil}
	}
	for _, k := range slices.Sorted(maps.Keys(nets)) {
		aliases := []string{sc.Name}
		if n := nets[k]; n != nil {
			aliases = append(aliases, n.Aliases...)
		}
		spec.TaskTemplate.Networks = append(spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: ns(k), Aliases: aliases})
	}
	return spec, usesDefault, nil
}

// volumeMount converts a volume of a service: a named volume the file
// declares (<stack>_<key>, labelled, on the local driver), an anonymous
// one, or a tmpfs. Binds of host paths are refused.
func volumeMount(v types.ServiceVolumeConfig, ns func(string) string, labels func(map[string]string) map[string]string,
	volumes types.Volumes) (mount.Mount, error) {
	if v.Target == "" || !path.IsAbs(v.Target) {
		return mount.Mount{}, fmt.Errorf("volumes: target %q must be an absolute path in the container", v.Target)
	}
	switch v.Type {
	case types.VolumeTypeVolume:
		m := mount.Mount{Type: mount.TypeVolume, Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Source == "" {
			return m, nil
		}
		decl, ok := volumes[v.Source]
		if !ok {
			return mount.Mount{}, fmt.Errorf("volumes: %q is not declared under the file's volumes:", v.Source)
		}
		m.Source = ns(v.Source)
		m.VolumeOptions = &mount.VolumeOptions{Labels: labels(decl.Labels)}
		return m, nil
	case types.VolumeTypeTmpfs:
		return mount.Mount{Type: mount.TypeTmpfs, Target: v.Target, ReadOnly: v.ReadOnly}, nil
	default:
		return mount.Mount{}, fmt.Errorf("volumes: %s mount of %q is not allowed: only named volumes and tmpfs (see docs/security.md)", v.Type, v.Source)
	}
}

// mapImage gives a service naming one of the project's images the
// reference this job built. Other images are used as written, but must
// name a tag or digest, and not be another repository of swarmhook's
// registry.
func mapImage(src Source, image string) (string, error) {
	if image == "" {
		return "", fmt.Errorf("image: is required")
	}
	if ref, ok := src.Images[imageref.Repository(image)]; ok {
		return ref, nil
	}
	if n, ok := imageref.NameIn(image, src.Registry); ok {
		if ref, ok := src.Images[imageref.Repository(n)]; ok {
			return ref, nil
		}
		return "", fmt.Errorf("image %s is in swarmhook's registry but is none of the project's images", image)
	}
	if _, err := name.ParseReference(image); err != nil {
		return "", fmt.Errorf("image %s: %w", image, err)
	}
	if parts := imageref.Split(image); parts.Tag == "" && parts.Digest == "" {
		return "", fmt.Errorf("image %s names no tag or digest: name one, or one of the project's images", image)
	}
	return image, nil
}

func fileTarget(r types.FileReferenceConfig, def string) (*swarm.ConfigReferenceFileTarget, error) {
	f := &swarm.ConfigReferenceFileTarget{Name: r.Target, UID: r.UID, GID: r.GID, Mode: 0o444}
	if f.Name == "" {
		f.Name = def
	}
	if f.UID == "" {
		f.UID = "0"
	}
	if f.GID == "" {
		f.GID = "0"
	}
	if r.Mode != nil {
		f.Mode = os.FileMode(*r.Mode)
	}
	return f, nil
}

func healthcheck(hc *types.HealthCheckConfig) *container.HealthConfig {
	if hc.Disable {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	h := &container.HealthConfig{Test: hc.Test}
	if hc.Interval != nil {
		h.Interval = time.Duration(*hc.Interval)
	}
	if hc.Timeout != nil {
		h.Timeout = time.Duration(*hc.Timeout)
	}
	if hc.StartPeriod != nil {
		h.StartPeriod = time.Duration(*hc.StartPeriod)
	}
	if hc.StartInterval != nil {
		h.StartInterval = time.Duration(*hc.StartInterval)
	}
	if hc.Retries != nil {
		h.Retries = int(*hc.Retries)
	}
	return h
}

func resources(r types.Resources) *swarm.ResourceRequirements {
	if r.Limits == nil && r.Reservations == nil {
		return nil
	}
	out := &swarm.ResourceRequirements{}
	if l := r.Limits; l != nil {
		out.Limits = &swarm.Limit{NanoCPUs: int64(float64(l.NanoCPUs) * 1e9), MemoryBytes: int64(l.MemoryBytes), Pids: l.Pids}
	}
	if l := r.Reservations; l != nil {
		out.Reservations = &swarm.Resources{NanoCPUs: int64(float64(l.NanoCPUs) * 1e9), MemoryBytes: int64(l.MemoryBytes)}
	}
	return out
}

func port(p types.ServicePortConfig) (swarm.PortConfig, error) {
	pc := swarm.PortConfig{TargetPort: p.Target, Protocol: swarm.PortConfigProtocolTCP, PublishMode: swarm.PortConfigPublishModeIngress}
	if p.Protocol != "" {
		pc.Protocol = swarm.PortConfigProtocol(p.Protocol)
	}
	switch p.Mode {
	case "", "ingress":
	case "host":
		pc.PublishMode = swarm.PortConfigPublishModeHost
	default:
		return pc, fmt.Errorf("ports: mode %q: want ingress or host", p.Mode)
	}
	if p.Published != "" {
		n, err := strconv.ParseUint(p.Published, 10, 16)
		if err != nil {
			return pc, fmt.Errorf("ports: published %q: a single port number", p.Published)
		}
		pc.PublishedPort = uint32(n)
	}
	return pc, nil
}

// serviceOrder returns the keys of the file's services: mapping in the
// order the file lists them; doc is the file's top mapping.
func serviceOrder(doc *yaml.Node) []string {
	var out []string
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "services" {
			continue
		}
		v := doc.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			out = append(out, v.Content[j].Value)
		}
	}
	return out
}
