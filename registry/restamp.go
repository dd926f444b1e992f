package registry

import (
	"context"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// CreatedLabel is the OCI label that says when an image was made;
// swarmhook sets it to the commit's time.
const CreatedLabel = "org.opencontainers.image.created"

// Restamp makes the image repo:tag, which must have digest want, say it
// was created when its CreatedLabel says: the config's created time and
// every history entry's become that time, and the tag is moved to the
// result. It returns the digest repo:tag then has. Builders stamp the
// build's own clock there (BuildKit in Docker 20.10 has no
// SOURCE_DATE_EPOCH), so without this two builds of one commit on
// engines without a shared cache differ in their config alone.
//
// Layers are not touched or sent again: only the new config blob and
// manifest are written. An image already stamped, or without the label,
// is left as it is. A request that fails with a transient error is
// tried again as WithRetries says, with a line in log for each attempt.
func (c *Client) Restamp(ctx context.Context, repo, tag, want string, log io.Writer) (string, error) {
	ref, err := c.tag(repo, tag)
	if err != nil {
		return "", err
	}
	a, opts := c.retrying(ctx, "restamp "+c.Ref(repo, tag), log)
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return "", a.done(fmt.Errorf("read image %s: %w", ref, mapErr(err)))
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", ref, err)
	}
	if want != "" && d.String() != want {
		return "", fmt.Errorf("restamp %s: it points at %s, not the pushed %s", ref, d, want)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", a.done(fmt.Errorf("read image config %s: %w", ref, mapErr(err)))
	}
	at, ok := createdAt(cfg)
	if !ok || stamped(cfg, at) {
		return d.String(), a.done(nil)
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: at}
	for i := range cfg.History {
		cfg.History[i].Created = v1.Time{Time: at}
	}
	out, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return "", fmt.Errorf("restamp %s: %w", ref, err)
	}
	if err := remote.Write(ref, out, opts...); err != nil {
		return "", a.done(fmt.Errorf("write restamped %s: %w", ref, mapErr(err)))
	}
	nd, err := out.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of restamped %s: %w", ref, err)
	}
	return nd.String(), a.done(nil)
}

// createdAt is the time cfg's CreatedLabel names, if it names one.
func createdAt(cfg *v1.ConfigFile) (time.Time, bool) {
	at, err := time.Parse(time.RFC3339, cfg.Config.Labels[CreatedLabel])
	if err != nil {
		return time.Time{}, false
	}
	return at.UTC(), true
}

// stamped reports whether every time in cfg is at already.
func stamped(cfg *v1.ConfigFile, at time.Time) bool {
	if !cfg.Created.Time.Equal(at) {
		return false
	}
	for _, h := range cfg.History {
		if !h.Created.Time.Equal(at) {
			return false
		}
	}
	return true
}
