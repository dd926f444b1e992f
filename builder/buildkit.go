package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/build"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/session/secrets"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// buildKit builds req through the engine's BuildKit: the context and the
// Dockerfile are served to the engine over a session on a hijacked
// connection (POST /session), as docker build does, instead of uploaded
// as a tar; secrets are served over the same session on request and
// never reach the image, the build's cache keys or its log.
//
// Both directories served are checked first as ContextTar checks them.
// The context is sent with .dockerignore applied and files owned by root;
// symlinks go as symlinks, and the engine resolves them inside its copy
// of the context. The Dockerfile's directory shows only the Dockerfile,
// so a <Dockerfile>.dockerignore, which BuildKit would prefer to the
// checked .dockerignore, is never read.
func (e *Engine) buildKit(ctx context.Context, req Request, c buildContext, log io.Writer) (string, error) {
	ctxFS, err := contextFS(c.dir, c.excludes)
	if err != nil {
		return "", err
	}
	dfFS, err := dockerfileFS(filepath.Join(c.dir, filepath.FromSlash(path.Dir(c.dockerfile))), path.Base(c.dockerfile))
	if err != nil {
		return "", err
	}
	// The shared key names the context to the engine, which keeps what
	// it last received under it and then asks only for what changed.
	key := sha256.Sum256([]byte(c.dir))
	s, err := session.NewSession(ctx, hex.EncodeToString(key[:16]))
	if err != nil {
		return "", fmt.Errorf("start build session: %w", err)
	}
	s.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource{"context": ctxFS, "dockerfile": dfFS}))
	s.Allow(secretsprovider.NewSecretProvider(secretStore(req.Secrets)))

	args := make(map[string]*string, len(req.BuildArgs))
	for k, v := range req.BuildArgs {
		args[k] = &v
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := s.Run(gctx, func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return e.c.DialHijack(ctx, "/session", proto, meta)
		})
		if err != nil {
			return fmt.Errorf("build session: %w", err)
		}
		return nil
	})
	var id string
	g.Go(func() error {
		defer s.Close()
		resp, err := e.c.ImageBuild(gctx, nil, build.ImageBuildOptions{
			Tags:          req.Tags,
			Dockerfile:    path.Base(c.dockerfile),
			BuildArgs:     args,
			Labels:        req.Labels,
			Target:        req.Target,
			NoCache:       req.NoCache,
			Version:       build.BuilderBuildKit,
			RemoteContext: "client-session",
			SessionID:     s.ID(),
		})
		if err != nil {
			return fmt.Errorf("start build: %w", err)
		}
		defer resp.Body.Close()
		p := &progress{w: log, seen: map[string]int{}}
		err = readStream(resp.Body, log, func(mid string, aux json.RawMessage) {
			switch mid {
			case "moby.image.id":
				var v struct{ ID string }
				if json.Unmarshal(aux, &v) == nil {
					id = v.ID
				}
			case "moby.buildkit.trace":
				p.trace(aux)
			}
		})
		if err != nil {
			return fmt.Errorf("build: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return "", err
	}
	if id == "" {
		return "", errors.New("build: engine reported no image id")
	}
	return id, nil
}

// contextFS is the context directory as BuildKit reads it: the files
// .dockerignore leaves, owned by root.
func contextFS(dir string, excludes []string) (fsutil.FS, error) {
	base, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, fmt.Errorf("open build context: %w", err)
	}
	fs, err := fsutil.NewFilterFS(base, &fsutil.FilterOpt{ExcludePatterns: excludes, Map: rootOwned})
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	return fs, nil
}

// dockerfileFS is dir showing only the file name.
func dockerfileFS(dir, name string) (fsutil.FS, error) {
	base, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, fmt.Errorf("open dockerfile directory: %w", err)
	}
	fs, err := fsutil.NewFilterFS(base, &fsutil.FilterOpt{
		Map: func(p string, st *fstypes.Stat) fsutil.MapResult {
			if p != name {
				return fsutil.MapResultExclude
			}
			return rootOwned(p, st)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open dockerfile: %w", err)
	}
	return fs, nil
}

func rootOwned(_ string, st *fstypes.Stat) fsutil.MapResult {
	st.Uid, st.Gid = 0, 0
	return fsutil.MapResultKeep
}

// secretStore serves a build's secrets by id.
type secretStore map[string]string

var _ secrets.SecretStore = secretStore(nil)

func (s secretStore) GetSecret(_ context.Context, id string) ([]byte, error) {
	v, ok := s[id]
	if !ok {
		return nil, fmt.Errorf("secret %q is not in the image's secrets: %w", id, secrets.ErrNotFound)
	}
	return []byte(v), nil
}

// progress turns BuildKit's status stream into log lines: each step when
// it starts, its output, and how it ended when it was cached or failed.
type progress struct {
	w    io.Writer
	seen map[string]int // vertex digest -> step number
	done map[string]bool
}

func (p *progress) trace(aux json.RawMessage) {
	var dt []byte
	if json.Unmarshal(aux, &dt) != nil {
		return
	}
	var st controlapi.StatusResponse
	if proto.Unmarshal(dt, &st) != nil {
		return
	}
	if p.done == nil {
		p.done = map[string]bool{}
	}
	for _, v := range st.Vertexes {
		n, ok := p.seen[v.Digest]
		if !ok && v.Started == nil && !v.Cached {
			continue
		}
		if !ok {
			n = len(p.seen) + 1
			p.seen[v.Digest] = n
			fmt.Fprintf(p.w, "#%d %s\n", n, v.Name)
		}
		if p.done[v.Digest] {
			continue
		}
		switch {
		case v.Error != "":
			p.done[v.Digest] = true
			fmt.Fprintf(p.w, "#%d ERROR: %s\n", n, v.Error)
		case v.Cached:
			p.done[v.Digest] = true
			fmt.Fprintf(p.w, "#%d CACHED\n", n)
		case v.Completed != nil:
			p.done[v.Digest] = true
		}
	}
	for _, l := range st.Logs {
		n, ok := p.seen[l.Vertex]
		if !ok {
			continue
		}
		for line := range strings.Lines(string(bytes.TrimRight(l.Msg, "\n"))) {
			fmt.Fprintf(p.w, "#%d %s\n", n, strings.TrimRight(line, "\r\n"))
		}
	}
}
