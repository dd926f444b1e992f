package engines

import (
	"fmt"
	"strings"

	"github.com/docker/cli/cli/connhelper"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/config"
)

// Client opens a client of the engine b names: a unix socket, tcp:// with
// b.TLS's client certificate when set, or ssh:// through the docker
// command on the far host (docker system dial-stdio, as the docker CLI
// does), with the ssh client's own keys and known_hosts.
func Client(b config.BuildEngine) (*client.Client, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	switch {
	case strings.HasPrefix(b.Host, "ssh://"):
		h, err := connhelper.GetConnectionHelper(b.Host)
		if err != nil {
			return nil, fmt.Errorf("build engine %s: ssh: %w", b.Name, err)
		}
		opts = append(opts, client.WithHost(h.Host), client.WithDialContext(h.Dialer))
	default:
		opts = append(opts, client.WithHost(b.Host))
	}
	if b.TLS != nil {
		opts = append(opts, client.WithTLSClientConfig(b.TLS.CA, b.TLS.Cert, b.TLS.Key))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("build engine %s: %w", b.Name, err)
	}
	return c, nil
}
