package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
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
// manifest are written. The config keeps every other field as it was,
// those go-containerregistry does not know included: BuildKit's inline
// cache (moby.buildkit.cache.v0) is what lets another engine reuse the
// image's layers. An image already stamped, or without the label,
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
	raw, err := img.RawConfigFile()
	if err != nil {
		return "", a.done(fmt.Errorf("read image config %s: %w", ref, mapErr(err)))
	}
	raw, err = restampConfig(raw, at)
	if err != nil {
		return "", fmt.Errorf("restamp %s: %w", ref, err)
	}
	out, err := withConfig(img, raw)
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

// restampConfig is the image config raw with its created time and every
// history entry's set to at, and nothing else changed: the other fields,
// known or not, keep their bytes. The result is the same for the same
// fields, whatever order raw had them in.
func restampConfig(raw []byte, at time.Time) ([]byte, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decode image config: %w", err)
	}
	created, err := json.Marshal(at)
	if err != nil {
		return nil, fmt.Errorf("encode created time: %w", err)
	}
	cfg["created"] = created
	if h, ok := cfg["history"]; ok {
		var history []map[string]json.RawMessage
		if err := json.Unmarshal(h, &history); err != nil {
			return nil, fmt.Errorf("decode image history: %w", err)
		}
		for i := range history {
			if history[i] == nil {
				history[i] = map[string]json.RawMessage{}
			}
			history[i]["created"] = created
		}
		if cfg["history"], err = marshalRaw(history); err != nil {
			return nil, fmt.Errorf("encode image history: %w", err)
		}
	}
	out, err := marshalRaw(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	return out, nil
}

// marshalRaw encodes v as json.Marshal does, keys sorted, but without
// escaping <, > and &, which json.Marshal would do even inside a
// json.RawMessage and so change a field it was not asked to.
func marshalRaw(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// configImage is an image with another config blob and the same layers.
// go-containerregistry's mutate.ConfigFile would encode the config from a
// *v1.ConfigFile, dropping every field that type does not have.
type configImage struct {
	v1.Image
	config, manifest []byte
}

// withConfig is img with config as its config blob, its manifest naming
// that blob and the same layers.
func withConfig(img v1.Image, config []byte) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m = m.DeepCopy()
	if m.Config.Digest, m.Config.Size, err = v1.SHA256(bytes.NewReader(config)); err != nil {
		return nil, fmt.Errorf("digest config: %w", err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return &configImage{Image: img, config: config, manifest: raw}, nil
}

func (i *configImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *configImage) ConfigName() (v1.Hash, error)   { return partial.ConfigName(i) }
func (i *configImage) RawManifest() ([]byte, error)   { return i.manifest, nil }
func (i *configImage) Digest() (v1.Hash, error)       { return partial.Digest(i) }
func (i *configImage) Size() (int64, error)           { return partial.Size(i) }

func (i *configImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.config))
}

func (i *configImage) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(i.manifest))
}
