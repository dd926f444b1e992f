package builder

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/versions"
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
	// DialHijack opens the connection a BuildKit session runs over.
	DialHijack(ctx context.Context, url, proto string, meta map[string][]string) (net.Conn, error)
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
}

// Kind is which of the engine's builders builds images.
type Kind string

// The engine's builders.
const (
	// BuildKit builds over a session, as DOCKER_BUILDKIT=1 docker build
	// does: labels and build args cost no steps, independent stages run
	// side by side, and RUN --mount=type=secret and type=cache work.
	BuildKit Kind = "buildkit"
	// Classic is the engine's original builder: the context goes up as a
	// tar, and every label is a step of its own. No build secrets.
	Classic Kind = "classic"
)

// ErrSecretsNeedBuildKit is the error of a build given secrets when the
// engine's classic builder is the one in use.
var ErrSecretsNeedBuildKit = errors.New("builder: build secrets need BuildKit (docker.builder: buildkit)")

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
	// Secrets are served to RUN --mount=type=secret,id=ID by id, with
	// BuildKit only. They never reach the image, and any value that shows
	// up in the build's output or error is replaced by "***".
	Secrets map[string]string
	// CacheFrom are images in the registry whose layers the build may
	// reuse; one not there yet is skipped. The classic builder pulls
	// them first (see builder/cache.go); BuildKit reads them from the
	// registry itself, and its builds with CacheFrom write the inline
	// cache that makes their own images usable so (see buildKitOptions).
	CacheFrom []string
}

// Engine builds and pushes images through the Docker Engine API. It is
// safe for concurrent use.
type Engine struct {
	c    Client
	auth string
	kind Kind
}

// NewEngine returns an Engine that builds with kind. registryAuth is the
// X-Registry-Auth value used for pushes (see
// registry.Credentials.EngineAuth).
func NewEngine(c Client, registryAuth string, kind Kind) *Engine {
	return &Engine{c: c, auth: registryAuth, kind: kind}
}

// Kind says which builder the engine builds with.
func (e *Engine) Kind() Kind { return e.kind }

// Build builds the image and returns its ID. Build output goes to log as
// it arrives; a failing step's message is both in log and in the error.
func (e *Engine) Build(ctx context.Context, req Request, log io.Writer) (string, error) {
	if len(req.Secrets) > 0 && e.kind != BuildKit {
		return "", ErrSecretsNeedBuildKit
	}
	c, err := checkContext(ctx, cmp.Or(req.WorkTree, req.ContextDir), req.ContextDir, req.Dockerfile)
	if err != nil {
		return "", err
	}
	rw := &redactor{w: log, secrets: req.Secrets}
	var id string
	if e.kind == BuildKit {
		id, err = e.buildKit(ctx, req, c, rw)
	} else {
		id, err = e.classic(ctx, req, c, rw)
	}
	if err != nil {
		return "", redactErr(err, req.Secrets)
	}
	return id, nil
}

// classic builds req with the engine's classic builder, the context sent
// as a tar.
func (e *Engine) classic(ctx context.Context, req Request, c buildContext, log io.Writer) (string, error) {
	tar, err := c.tar()
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
	err = readStream(resp.Body, log, func(_ string, aux json.RawMessage) {
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
	err = readStream(rc, log, func(_ string, aux json.RawMessage) {
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
// message, skipping progress bars, and hands aux payloads to onAux with
// the message's id. A message carrying an error ends the stream with that
// error.
func readStream(r io.Reader, log io.Writer, onAux func(id string, aux json.RawMessage)) error {
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
			onAux(m.ID, *m.Aux)
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

// redactor writes to w with every secret value replaced by "***". Build
// output reaches it one whole line a write.
type redactor struct {
	w       io.Writer
	secrets map[string]string
}

func (r *redactor) Write(p []byte) (int, error) {
	if len(r.secrets) == 0 {
		return r.w.Write(p)
	}
	if _, err := io.WriteString(r.w, redact(string(p), r.secrets)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redact replaces every secret value in s by "***".
func redact(s string, secrets map[string]string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

// redactErr is err with every secret value in its text replaced by "***".
func redactErr(err error, secrets map[string]string) error {
	if msg := redact(err.Error(), secrets); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// Pinger is the Engine API call Detect makes; *client.Client satisfies
// it.
type Pinger interface {
	Ping(ctx context.Context) (types.Ping, error)
}

// minBuildKitAPI is the first Engine API version whose session and
// BuildKit builds are no longer experimental (Docker 18.09).
const minBuildKitAPI = "1.39"

// Detect says which builder to use on the engine c reaches: BuildKit
// when the engine says it builds with it by default, or runs Linux with
// API 1.39 or later (Docker 20.10 answers 1.41 but names no default
// builder), else Classic.
func Detect(ctx context.Context, c Pinger) (Kind, error) {
	p, err := c.Ping(ctx)
	if err != nil {
		return "", fmt.Errorf("ask the engine which builders it has: %w", err)
	}
	if p.BuilderVersion == build.BuilderBuildKit {
		return BuildKit, nil
	}
	if p.OSType == "linux" && p.APIVersion != "" && !versions.LessThan(p.APIVersion, minBuildKitAPI) {
		return BuildKit, nil
	}
	return Classic, nil
}
