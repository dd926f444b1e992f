package builder

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/swarmhook/swarmhook/imageref"
)

// Client is the part of the Docker Engine API the builder uses;
// *client.Client satisfies it.
type Client interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
	ImagePush(ctx context.Context, ref string, options image.PushOptions) (io.ReadCloser, error)
	ImageList(ctx context.Context, options image.ListOptions) ([]image.Summary, error)
	ImageRemove(ctx context.Context, ref string, options image.RemoveOptions) ([]image.DeleteResponse, error)
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
}

// ErrTransient marks a push that failed for a reason worth trying again:
// the registry answered 5xx, or the connection to it was reset, refused
// or cut short.
var ErrTransient = errors.New("builder: transient registry error")

// transientPush lists how the engine words a passing registry failure in
// a push stream. The engine reports registry errors only as text, so this
// is the one place that reads them.
var transientPush = []string{
	"unexpected HTTP status: 5", "status code 5", "503 Service Unavailable", "502 Bad Gateway", "504 Gateway Timeout",
	"500 Internal Server Error", "connection reset by peer", "connection refused", "broken pipe", "unexpected EOF",
	"i/o timeout", "TLS handshake timeout", "toomanyrequests",
}

// ProjectLabel is the label every image swarmhook builds carries, naming
// its project; Prune only ever removes images that have it.
const ProjectLabel = "io.swarmhook.project"

// Request describes one image build.
type Request struct {
	// WorkTree is the checked-out source the build may read: the
	// context, the Dockerfile and .dockerignore must resolve inside it,
	// symlinks followed (see ContextTar). Empty means ContextDir itself.
	WorkTree string
	// ContextDir is the build context on disk, WorkTree or below it.
	ContextDir string
	// Dockerfile is relative to ContextDir.
	Dockerfile string
	// Tags name the built image, e.g. registry/app:main-20261126101500.
	Tags []string
	// BuildArgs are passed to the build; values are never logged.
	BuildArgs map[string]string
	// Labels are added to the image.
	Labels map[string]string
	// Target is the stage to build; empty builds the last one.
	Target string
	// NoCache disables the build cache.
	NoCache bool
	// CacheFrom are images in the registry whose layers the build may
	// reuse (see builder/cache.go); one not there yet is skipped.
	CacheFrom []string
}

// Engine builds and pushes images through the Docker Engine API. It is
// safe for concurrent use.
type Engine struct {
	c    Client
	auth string
}

// NewEngine returns an Engine. registryAuth is the X-Registry-Auth value
// used for pushes (see registry.Credentials.EngineAuth).
func NewEngine(c Client, registryAuth string) *Engine {
	return &Engine{c: c, auth: registryAuth}
}

// Build builds the image and returns its ID. Build output goes to log as
// it arrives; a failing step's message is both in log and in the error.
func (e *Engine) Build(ctx context.Context, req Request, log io.Writer) (string, error) {
	tree := cmp.Or(req.WorkTree, req.ContextDir)
	tar, err := ContextTar(ctx, tree, req.ContextDir, req.Dockerfile)
	if err != nil {
		return "", err
	}
	defer tar.Close()
	args := make(map[string]*string, len(req.BuildArgs))
	for k, v := range req.BuildArgs {
		args[k] = &v
	}
	resp, err := e.c.ImageBuild(ctx, tar, build.ImageBuildOptions{
		Tags:        req.Tags,
		Dockerfile:  filepath.ToSlash(req.Dockerfile),
		BuildArgs:   args,
		Labels:      req.Labels,
		Target:      req.Target,
		NoCache:     req.NoCache,
		CacheFrom:   e.pullCache(ctx, req.CacheFrom, log),
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("start build: %w", err)
	}
	defer resp.Body.Close()
	var id string
	err = readStream(resp.Body, log, func(aux json.RawMessage) {
		var v struct{ ID string }
		if json.Unmarshal(aux, &v) == nil && v.ID != "" {
			id = v.ID
		}
	})
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	if id == "" {
		return "", errors.New("build: engine reported no image id")
	}
	return id, nil
}

// Push pushes ref (registry/repo:tag) and returns the manifest digest the
// registry stored it under.
func (e *Engine) Push(ctx context.Context, ref string, log io.Writer) (string, error) {
	rc, err := e.c.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: e.auth})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	var digest string
	err = readStream(rc, log, func(aux json.RawMessage) {
		var v struct{ Digest string }
		if json.Unmarshal(aux, &v) == nil && v.Digest != "" {
			digest = v.Digest
		}
	})
	if err != nil {
		for _, s := range transientPush {
			if strings.Contains(err.Error(), s) {
				return "", fmt.Errorf("push %s: %w: %w", ref, ErrTransient, err)
			}
		}
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	if !strings.HasPrefix(digest, "sha256:") {
		return "", fmt.Errorf("push %s: engine reported no digest", ref)
	}
	return digest, nil
}

// Prune removes from the engine the images of repo (registry/name) that
// carry ProjectLabel, except the keep newest. An image still used by a
// container stays; Prune says so in log and goes on. It returns how many
// images it removed.
func (e *Engine) Prune(ctx context.Context, repo string, keep int, log io.Writer) (int, error) {
	imgs, err := e.c.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", ProjectLabel))})
	if err != nil {
		return 0, fmt.Errorf("list built images: %w", err)
	}
	type built struct {
		created int64
		tags    []string
	}
	var mine []built
	for _, im := range imgs {
		var tags []string
		for _, t := range im.RepoTags {
			if imageref.Repository(t) == repo {
				tags = append(tags, t)
			}
		}
		if len(tags) > 0 {
			mine = append(mine, built{im.Created, tags})
		}
	}
	if len(mine) <= keep {
		return 0, nil
	}
	slices.SortFunc(mine, func(a, b built) int { return cmp.Compare(b.created, a.created) })
	removed := 0
	for _, b := range mine[keep:] {
		gone := true
		for _, t := range b.tags {
			// Untagging the last tag deletes the image; one with other
			// tags stays for them.
			if _, err := e.c.ImageRemove(ctx, t, image.RemoveOptions{PruneChildren: true}); err != nil {
				fmt.Fprintf(log, "keeping %s: %v\n", t, err)
				gone = false
			}
		}
		if gone {
			removed++
			fmt.Fprintf(log, "removed superseded image %s\n", strings.Join(b.tags, ", "))
		}
	}
	return removed, nil
}

// readStream copies an Engine API JSON message stream into log, one line a
// message, skipping progress bars, and hands aux payloads to onAux. A
// message carrying an error ends the stream with that error.
func readStream(r io.Reader, log io.Writer, onAux func(json.RawMessage)) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read engine output: %w", err)
		}
		switch {
		case m.Error != nil:
			fmt.Fprintln(log, strings.TrimRight(m.Error.Message, "\n"))
			return errors.New(strings.TrimSpace(m.Error.Message))
		case m.Aux != nil:
			onAux(*m.Aux)
		case m.Stream != "":
			io.WriteString(log, m.Stream)
		case m.Status != "" && m.Progress == nil:
			if m.ID != "" {
				fmt.Fprintf(log, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(log, m.Status)
			}
		}
	}
}
