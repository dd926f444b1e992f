package stack

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmhook/swarmhook/imageref"
)

// fieldsOf are the parts of a service spec a stack file decides, each
// written in one canonical form, so Swarm's defaults and IDs (networks
// by ID, configs and secrets by ID) do not count as changes. netName
// maps network IDs to names.
func fieldsOf(spec swarm.ServiceSpec, netName map[string]string) map[string]string {
	out := map[string]string{}
	put := func(k string, v any) {
		out[k] = canonical(v)
	}
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil {
		cs = &swarm.ContainerSpec{}
	}
	put("image", cs.Image)
	put("environment", sortedCopy(cs.Env))
	put("entrypoint", cs.Command)
	put("command", cs.Args)
	put("labels", spec.Labels)
	put("container_labels", cs.Labels)
	put("working_dir", cs.Dir)
	put("user", cs.User)
	put("hostname", cs.Hostname)
	put("stop_signal", cs.StopSignal)
	put("stop_grace_period", cs.StopGracePeriod)
	put("read_only", cs.ReadOnly)
	put("init", cs.Init != nil && *cs.Init)
	put("healthcheck", cs.Healthcheck)
	mounts := slices.Clone(cs.Mounts)
	slices.SortFunc(mounts, func(a, b mount.Mount) int { return strings.Compare(a.Target, b.Target) })
	put("volumes", mounts)
	type ref struct {
		Name, Target, UID, GID string
		Mode                   uint32
	}
	var configs, secrets []ref
	for _, c := range cs.Configs {
		if c.File != nil {
			configs = append(configs, ref{c.ConfigName, c.File.Name, c.File.UID, c.File.GID, uint32(c.File.Mode)})
		}
	}
	for _, s := range cs.Secrets {
		if s.File != nil {
			secrets = append(secrets, ref{s.SecretName, s.File.Name, s.File.UID, s.File.GID, uint32(s.File.Mode)})
		}
	}
	sortRefs := func(r []ref) { slices.SortFunc(r, func(a, b ref) int { return strings.Compare(a.Target, b.Target) }) }
	sortRefs(configs)
	sortRefs(secrets)
	put("configs", configs)
	put("secrets", secrets)
	type attach struct {
		Network string
		Aliases []string
	}
	var nets []attach
	for _, n := range spec.TaskTemplate.Networks {
		name := n.Target
		if byID, ok := netName[name]; ok {
			name = byID
		}
		nets = append(nets, attach{name, sortedCopy(n.Aliases)})
	}
	slices.SortFunc(nets, func(a, b attach) int { return strings.Compare(a.Network, b.Network) })
	put("networks", nets)
	put("mode", spec.Mode)
	put("placement", spec.TaskTemplate.Placement)
	put("resources", spec.TaskTemplate.Resources)
	put("restart_policy", spec.TaskTemplate.RestartPolicy)
	ep := swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}
	if spec.EndpointSpec != nil {
		ep = *spec.EndpointSpec
		if ep.Mode == "" {
			ep.Mode = swarm.ResolutionModeVIP
		}
	}
	ports := slices.Clone(ep.Ports)
	for i := range ports {
		if ports[i].Protocol == "" {
			ports[i].Protocol = swarm.PortConfigProtocolTCP
		}
		if ports[i].PublishMode == "" {
			ports[i].PublishMode = swarm.PortConfigPublishModeIngress
		}
	}
	// One target may be published twice (53/tcp and 53/udp): order by
	// all of a port, so Swarm's order never reads as a change.
	slices.SortFunc(ports, func(a, b swarm.PortConfig) int {
		return cmp.Or(cmp.Compare(a.TargetPort, b.TargetPort), strings.Compare(string(a.Protocol), string(b.Protocol)),
			cmp.Compare(a.PublishedPort, b.PublishedPort), strings.Compare(string(a.PublishMode), string(b.PublishMode)))
	})
	put("endpoint_mode", ep.Mode)
	put("ports", ports)
	return out
}

// changedFields lists, sorted, the fields of the running spec that the
// desired one changes. Images pinned to the same digest are the same
// whatever their tags (as for image updates), and an image written
// without a digest matches the same image pinned to one.
func changedFields(desired, current swarm.ServiceSpec, netName map[string]string) []string {
	want, have := fieldsOf(desired, netName), fieldsOf(current, netName)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if want[k] == have[k] {
			continue
		}
		if k == "image" && sameImage(desired, current) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func sameImage(desired, current swarm.ServiceSpec) bool {
	d, c := desired.TaskTemplate.ContainerSpec, current.TaskTemplate.ContainerSpec
	if d == nil || c == nil {
		return false
	}
	if dd := imageref.Digest(d.Image); dd != "" {
		return dd == imageref.Digest(c.Image)
	}
	return strings.TrimSuffix(c.Image, "@"+imageref.Digest(c.Image)) == d.Image
}

// canonical is v as JSON with every empty value (null, "", 0, false,
// {} and []) left out at every depth, so a default Swarm writes back
// and one the file leaves out compare equal.
func canonical(v any) string {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	b, _ = json.Marshal(prune(x))
	return string(b)
}

func prune(x any) any {
	switch v := x.(type) {
	case map[string]any:
		for k, e := range v {
			if e = prune(e); e == nil {
				delete(v, k)
			} else {
				v[k] = e
			}
		}
		if len(v) == 0 {
			return nil
		}
	case []any:
		for i := range v {
			v[i] = prune(v[i])
		}
		if len(v) == 0 {
			return nil
		}
	case string:
		if v == "" {
			return nil
		}
	case float64:
		if v == 0 {
			return nil
		}
	case bool:
		if !v {
			return nil
		}
	}
	return x
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
