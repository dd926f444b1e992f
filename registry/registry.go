package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/imageref"
)

// ErrNotFound means the registry has no such tag or manifest.
var ErrNotFound = errors.New("registry: not found")

// Credentials are basic-auth credentials for one registry host.
type Credentials struct {
	// Host is host[:port] of the registry.
	Host string
	// Username and Password may both be empty for an open registry.
	Username, Password string
	// IdentityToken is an OAuth2 refresh token some credential helpers
	// return instead of a password.
	IdentityToken string
}

// String never shows the secrets.
func (c Credentials) String() string {
	if c.Username == "" && c.IdentityToken == "" {
		return c.Host + " (anonymous)"
	}
	return c.Host + " as " + c.Username
}

// DockerConfigCredentials returns creds unchanged when it names a user,
// and otherwise the credentials ~/.docker/config.json ($DOCKER_CONFIG)
// holds for creds.Host, through its credential helpers where it names
// them. A host it does not know is anonymous.
func DockerConfigCredentials(ctx context.Context, creds Credentials) (Credentials, error) {
	if creds.Username != "" {
		return creds, nil
	}
	reg, err := name.NewRegistry(creds.Host)
	if err != nil {
		return creds, fmt.Errorf("registry %s: %w", creds.Host, err)
	}
	auth, err := authn.DefaultKeychain.ResolveContext(ctx, reg)
	if err != nil {
		return creds, fmt.Errorf("docker config credentials for %s: %w", creds.Host, err)
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return creds, fmt.Errorf("docker config credentials for %s: %w", creds.Host, err)
	}
	creds.Username, creds.Password, creds.IdentityToken = cfg.Username, cfg.Password, cfg.IdentityToken
	return creds, nil
}

// EngineAuth encodes the credentials as the Docker Engine API's
// X-Registry-Auth value, for pushes and for Swarm nodes pulling a service
// image. Empty credentials encode as "{}", which engines accept as none.
func (c Credentials) EngineAuth() string {
	if c.Username == "" && c.IdentityToken == "" {
		return base64.URLEncoding.EncodeToString([]byte("{}"))
	}
	b, _ := json.Marshal(struct {
		Username      string `json:"username,omitempty"`
		Password      string `json:"password,omitempty"`
		IdentityToken string `json:"identitytoken,omitempty"`
		ServerAddress string `json:"serveraddress"`
	}{c.Username, c.Password, c.IdentityToken, c.Host})
	return base64.URLEncoding.EncodeToString(b)
}

// Client talks to one registry. It is safe for concurrent use.
type Client struct {
	host     string
	insecure bool
	auth     authn.Authenticator
	log      zerolog.Logger
	// puller and pusher keep one authenticated transport per repository,
	// so many requests to one repository ping and log in once.
	puller *remote.Puller
	pusher *remote.Pusher
	del    deleteState
	// retry is the schedule of Retag's attempts: one, unless WithRetries.
	retry remote.Backoff
}

// Option configures a Client.
type Option func(*Client)

// WithLog makes the client log what it learns about the registry, such as
// whether it deletes tags; by default it logs nothing.
func WithLog(log zerolog.Logger) Option { return func(c *Client) { c.log = log } }

// WithRetries makes Retag try a request again, up to retries more times,
// while it fails with a transient error (see IsTransient), pausing first
// for backoff and then twice as long each time.
func WithRetries(retries int, backoff time.Duration) Option {
	return func(c *Client) {
		c.retry = remote.Backoff{Duration: backoff, Factor: backoffFactor, Steps: max(retries, 0) + 1}
	}
}

// backoffFactor doubles each pause, as registry.retry_backoff documents.
// There is no jitter: the job log says exactly how long each pause is.
const backoffFactor = 2

// transientStatus are the answers go-containerregistry retries without
// looking at the error: the ones IsTransient counts as transient.
var transientStatus = []int{http.StatusRequestTimeout, http.StatusTooManyRequests,
	http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// New returns a client for the registry in creds. insecure allows plain
// HTTP; loopback registries use HTTP either way.
func New(creds Credentials, insecure bool, opts ...Option) *Client {
	var auth authn.Authenticator = authn.Anonymous
	if creds.Username != "" || creds.IdentityToken != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Password, IdentityToken: creds.IdentityToken})
	}
	c := &Client{host: creds.Host, insecure: insecure, auth: auth, log: zerolog.Nop(), retry: remote.Backoff{Steps: 1}}
	for _, o := range opts {
		o(c)
	}
	// Neither constructor fails without options that can fail.
	c.puller, _ = remote.NewPuller(c.baseOpts()...)
	c.pusher, _ = remote.NewPusher(c.baseOpts()...)
	return c
}

// Host returns the registry's host[:port].
func (c *Client) Host() string { return c.host }

// Ref returns the full reference host/repo:tag.
func (c *Client) Ref(repo, tag string) string { return imageref.Tagged(c.host, repo, tag) }

// baseOpts are the options of the shared puller and pusher: reads and
// deletes make one attempt, so an API caller or the pruner hears of a
// registry failure at once and the next run tries again.
func (c *Client) baseOpts() []remote.Option {
	return []remote.Option{remote.WithAuth(c.auth),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
		remote.WithRetryPredicate(func(error) bool { return false })}
}

func (c *Client) tag(repo, tag string) (name.Tag, error) {
	var o []name.Option
	if c.insecure {
		o = append(o, name.Insecure)
	}
	t, err := name.NewTag(c.Ref(repo, tag), append(o, name.StrictValidation)...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("reference %s:%s: %w", repo, tag, err)
	}
	return t, nil
}

// Digest returns the manifest digest repo:tag points at.
func (c *Client) Digest(ctx context.Context, repo, tag string) (string, error) {
	t, err := c.tag(repo, tag)
	if err != nil {
		return "", err
	}
	d, err := c.puller.Head(ctx, t)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", t, mapErr(err))
	}
	return d.Digest.String(), nil
}

// Retag points repo:to at the manifest repo:from points at, with one
// manifest GET and one PUT, and returns its digest. When want is not empty
// and repo:from no longer has that digest, nothing is written. A request
// that fails with a transient error is tried again as WithRetries says,
// and log gets a line for each attempt that failed.
func (c *Client) Retag(ctx context.Context, repo, from, to, want string, log io.Writer) (string, error) {
	src, err := c.tag(repo, from)
	if err != nil {
		return "", err
	}
	dst, err := c.tag(repo, to)
	if err != nil {
		return "", err
	}
	a, opts := c.retrying(ctx, "move "+c.Ref(repo, to), log)
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return "", a.done(fmt.Errorf("read manifest %s: %w", src, mapErr(err)))
	}
	if want != "" && desc.Digest.String() != want {
		return "", fmt.Errorf("retag %s: it points at %s, not the pushed %s", src, desc.Digest, want)
	}
	if err := remote.Tag(dst, desc, opts...); err != nil {
		return "", a.done(fmt.Errorf("tag %s: %w", dst, mapErr(err)))
	}
	return desc.Digest.String(), a.done(nil)
}

// retrying returns the options of one call that retries transient
// failures as WithRetries says, each failed attempt noted in log, and
// the attempts whose done reports how it went. Not the shared puller and
// pusher: their retries are fixed when they are made, and these write to
// this call's log.
func (c *Client) retrying(ctx context.Context, what string, log io.Writer) (*attempts, []remote.Option) {
	a := &attempts{ctx: ctx, what: what, log: log, schedule: c.retry, requests: map[string]*requestAttempts{}}
	return a, []remote.Option{remote.WithAuth(c.auth), remote.WithContext(ctx),
		remote.WithRetryBackoff(c.retry), remote.WithRetryStatusCodes(transientStatus...), remote.WithRetryPredicate(a.retry)}
}

func (c *Client) repository(repo string) (name.Repository, error) {
	var o []name.Option
	if c.insecure {
		o = append(o, name.Insecure)
	}
	r, err := name.NewRepository(c.host+"/"+repo, o...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %s: %w", repo, err)
	}
	return r, nil
}

// Tags lists the tags of repo.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := c.repository(repo)
	if err != nil {
		return nil, err
	}
	tags, err := c.puller.List(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", r, mapErr(err))
	}
	return tags, nil
}

// IsTransient reports whether err is worth trying again: the registry
// answered 5xx, 408 or 429, or the connection was reset, refused, cut
// short or timed out.
func IsTransient(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode >= 500 || te.StatusCode == http.StatusRequestTimeout || te.StatusCode == http.StatusTooManyRequests
	}
	var ne net.Error
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &ne) && ne.Timeout())
}

// mapErr turns a registry 404 into ErrNotFound, keeping the original.
func mapErr(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
