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
	registrytypes "github.com/docker/docker/api/types/registry"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/session/secrets"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
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

	creds, err := newRegistryAuth(e.auth)
	if err != nil {
		return "", err
	}
	s.Allow(creds)

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
		resp, err := e.c.ImageBuild(gctx, nil, buildKitOptions(req, path.Base(c.dockerfile), s.ID()))
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

// InlineCacheArg is the build arg that makes the engine's BuildKit write
// the build's cache metadata into the image config
// (moby.buildkit.cache.v0), where a later build's cache-from finds it.
const InlineCacheArg = "BUILDKIT_INLINE_CACHE"

// buildKitOptions is the BuildKit build of req from the session sid, the
// Dockerfile named dockerfile in the session's dockerfile directory.
//
// CacheFrom goes to the engine as it is: Docker 20.10's BuildKit reads
// a cache-from image's inline cache from the engine's own copy when it
// has one and from the registry when not (builder-next's
// localinlinecache), and then pulls only the layers it reuses, so
// nothing is pulled first. A ref the registry does not have costs only
// the cache. A build with CacheFrom also writes its inline cache, so
// that the image it pushes serves the next build the same way; one
// without (no docker.builders, or no_cache) leaves the image config as
// it was.
func buildKitOptions(req Request, dockerfile, sid string) build.ImageBuildOptions {
	args := make(map[string]*string, len(req.BuildArgs)+1)
	for k, v := range req.BuildArgs {
		args[k] = &v
	}
	if _, set := args[InlineCacheArg]; len(req.CacheFrom) > 0 && !set {
		inline := "1"
		args[InlineCacheArg] = &inline
	}
	return build.ImageBuildOptions{
		Tags:          req.Tags,
		Dockerfile:    dockerfile,
		BuildArgs:     args,
		Labels:        req.Labels,
		Target:        req.Target,
		NoCache:       req.NoCache,
		CacheFrom:     req.CacheFrom,
		Version:       build.BuilderBuildKit,
		RemoteContext: "client-session",
		SessionID:     sid,
	}
}

// registryAuth answers the engine's requests for registry credentials
// over a build's session, as docker build does from the CLI's config:
// BuildKit asks for them when it reads a cache-from image or pulls a
// base image. It gives the credentials swarmhook pushes with for the
// registry they name, and none for any other host.
type registryAuth struct {
	auth.UnimplementedAuthServer
	host, username, secret string
}

// newRegistryAuth serves the credentials of engineAuth, an X-Registry-Auth
// value (registry.Credentials.EngineAuth).
func newRegistryAuth(engineAuth string) (*registryAuth, error) {
	if engineAuth == "" {
		return &registryAuth{}, nil
	}
	c, err := registrytypes.DecodeAuthConfig(engineAuth)
	if err != nil {
		return nil, fmt.Errorf("read registry credentials: %w", err)
	}
	if c.IdentityToken != "" {
		return &registryAuth{host: c.ServerAddress, secret: c.IdentityToken}, nil
	}
	return &registryAuth{host: c.ServerAddress, username: c.Username, secret: c.Password}, nil
}

// Register implements session.Attachable.
func (a *registryAuth) Register(s *grpc.Server) { auth.RegisterAuthServer(s, a) }

// Credentials implements auth.AuthServer. An identity token goes as the
// secret with no username, as the Docker CLI sends it.
func (a *registryAuth) Credentials(_ context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	if a.host == "" || req.GetHost() != a.host || a.secret == "" {
		return &auth.CredentialsResponse{}, nil
	}
	return &auth.CredentialsResponse{Username: a.username, Secret: a.secret}, nil
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
