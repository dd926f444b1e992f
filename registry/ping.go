package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
)

// Ping checks that the registry answers its API base, GET /v2/. A 401 is
// an answer too: the registry is up and wants credentials, which pushes
// and pulls supply.
func (c *Client) Ping(ctx context.Context) error {
	var o []name.Option
	if c.insecure {
		o = append(o, name.Insecure)
	}
	reg, err := name.NewRegistry(c.host, o...)
	if err != nil {
		return fmt.Errorf("registry %s: %w", c.host, err)
	}
	url := reg.Scheme() + "://" + reg.RegistryStr() + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("ping %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ping registry: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("ping %s: answered %s", url, resp.Status)
	}
	return nil
}
