package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TagDeletion is how a registry lets one tag go.
type TagDeletion string

// Ways of deleting a tag.
const (
	// DeleteByTag: DELETE /v2/<name>/manifests/<tag> removes the tag only
	// (distribution v3, OCI distribution-spec 1.1).
	DeleteByTag TagDeletion = "tag"
	// DeleteByUntag: the registry refuses to delete tags (distribution
	// 2.8 answers 400 UNSUPPORTED), and deleting the manifest by digest
	// would remove every tag that points at it. The tag is first moved to
	// a tiny throwaway manifest of its own, which is then deleted by
	// digest; the real manifest is never touched.
	DeleteByUntag TagDeletion = "untag"
)

// ErrDeleteDisabled means the registry refuses every delete (405): for
// distribution, storage.delete.enabled is false.
var ErrDeleteDisabled = errors.New("registry: deletes are disabled (storage.delete.enabled: false?)")

// ErrTagMoved means a tag no longer points at the digest it was planned
// with, so it is left alone.
var ErrTagMoved = errors.New("registry: tag moved since it was listed")

// throwawayLabel marks the one-off manifests untagging writes. Each has a
// random value, so no two share a digest and deleting one by digest can
// only ever remove the tag just moved onto it.
const throwawayLabel = "io.swarmhook.prune.untag"

// probeTag is a tag that never exists: deleting it tells a registry that
// supports tag deletion (404 unknown manifest) from one that does not
// (400 unsupported), without changing anything.
const probeTag = "swarmhook-tag-delete-probe"

// deleteState caches what the registry supports and one authenticated
// transport per repository for manifest requests.
type deleteState struct {
	mu   sync.Mutex
	mode TagDeletion

	tmu        sync.Mutex
	transports map[string]http.RoundTripper
}

// TagDeletion probes, once per client, how the registry deletes a tag,
// and logs what it found. repo is any repository the client may write.
func (c *Client) TagDeletion(ctx context.Context, repo string) (TagDeletion, error) {
	c.del.mu.Lock()
	defer c.del.mu.Unlock()
	if c.del.mode != "" {
		return c.del.mode, nil
	}
	code, err := c.manifestRequest(ctx, http.MethodDelete, repo, probeTag)
	if err != nil {
		return "", fmt.Errorf("probe tag deletion on %s: %w", c.host, err)
	}
	switch code {
	case http.StatusNotFound, http.StatusAccepted, http.StatusOK:
		c.del.mode = DeleteByTag
	case http.StatusBadRequest:
		c.del.mode = DeleteByUntag
	case http.StatusMethodNotAllowed:
		return "", fmt.Errorf("probe tag deletion on %s: %w", c.host, ErrDeleteDisabled)
	default:
		return "", fmt.Errorf("probe tag deletion on %s: unexpected HTTP %d", c.host, code)
	}
	c.log.Info().Str("registry", c.host).Str("tag_deletion", string(c.del.mode)).
		Msg("registry tag deletion: " + describeMode(c.del.mode))
	return c.del.mode, nil
}

func describeMode(m TagDeletion) string {
	if m == DeleteByTag {
		return "supported (DELETE by tag)"
	}
	return "unsupported; untagging through a throwaway manifest"
}

// DeleteTag removes repo:tag, which must still point at digest, without
// removing the manifest for any other tag. exclusive says the caller
// listed the repository and no other tag points at digest: on a registry
// without tag deletion the manifest is then deleted by digest directly,
// which is one request instead of four. A tag already gone is not an
// error.
func (c *Client) DeleteTag(ctx context.Context, repo, tag, digest string, exclusive bool) error {
	mode, err := c.TagDeletion(ctx, repo)
	if err != nil {
		return err
	}
	t, err := c.tag(repo, tag)
	if err != nil {
		return err
	}
	desc, err := c.puller.Head(ctx, t)
	if err != nil {
		if err = mapErr(err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("resolve %s before deleting it: %w", t, err)
	}
	if desc.Digest.String() != digest {
		return fmt.Errorf("delete %s: %w (now %s, planned %s)", t, ErrTagMoved, desc.Digest, digest)
	}
	switch {
	case mode == DeleteByTag:
		return c.deleteManifest(ctx, repo, tag)
	case exclusive:
		return c.deleteManifest(ctx, repo, digest)
	default:
		return c.untag(ctx, t)
	}
}

// untag points t at a fresh throwaway manifest and deletes that manifest
// by digest, which takes t with it and nothing else.
func (c *Client) untag(ctx context.Context, t name.Tag) error {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		Config: v1.Config{Labels: map[string]string{throwawayLabel: hex.EncodeToString(nonce)}},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return fmt.Errorf("make throwaway manifest for %s: %w", t, err)
	}
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("make throwaway manifest for %s: %w", t, err)
	}
	if err := c.pusher.Push(ctx, t, img); err != nil {
		return fmt.Errorf("move %s to a throwaway manifest: %w", t, mapErr(err))
	}
	if err := c.deleteManifest(ctx, t.RepositoryStr(), d.String()); err != nil {
		return fmt.Errorf("delete throwaway manifest of %s: %w", t, err)
	}
	return nil
}

// deleteManifest deletes /v2/<repo>/manifests/<ref>; 404 counts as done.
func (c *Client) deleteManifest(ctx context.Context, repo, ref string) error {
	code, err := c.manifestRequest(ctx, http.MethodDelete, repo, ref)
	if err != nil {
		return fmt.Errorf("delete %s/%s@%s: %w", c.host, repo, ref, err)
	}
	switch code {
	case http.StatusAccepted, http.StatusOK, http.StatusNotFound:
		return nil
	case http.StatusMethodNotAllowed:
		return fmt.Errorf("delete %s/%s@%s: %w", c.host, repo, ref, ErrDeleteDisabled)
	default:
		return fmt.Errorf("delete %s/%s@%s: HTTP %d", c.host, repo, ref, code)
	}
}

// manifestRequest sends one bodiless request for a manifest and returns
// the status. The authenticated transport is made once per repository.
func (c *Client) manifestRequest(ctx context.Context, method, repo, ref string) (int, error) {
	r, err := c.repository(repo)
	if err != nil {
		return 0, err
	}
	rt, err := c.repoTransport(ctx, r)
	if err != nil {
		return 0, err
	}
	u := url.URL{Scheme: r.Scheme(), Host: r.RegistryStr(), Path: "/v2/" + r.RepositoryStr() + "/manifests/" + ref}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (c *Client) repoTransport(ctx context.Context, r name.Repository) (http.RoundTripper, error) {
	key := r.RepositoryStr()
	c.del.tmu.Lock()
	defer c.del.tmu.Unlock()
	if rt, ok := c.del.transports[key]; ok {
		return rt, nil
	}
	rt, err := transport.NewWithContext(ctx, r.Registry, c.auth, remote.DefaultTransport, []string{r.Scope("delete"), r.Scope(transport.PushScope)})
	if err != nil {
		return nil, fmt.Errorf("authenticate to %s: %w", r, err)
	}
	if c.del.transports == nil {
		c.del.transports = map[string]http.RoundTripper{}
	}
	c.del.transports[key] = rt
	return rt, nil
}
