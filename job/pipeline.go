package job

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/tagpolicy"
)

// stage runs fn as a named, timed stage of j. While fn runs, j's
// record names the stage (Job.Stage).
func (r *Runner) stage(ctx context.Context, j *Job, name string, w io.Writer, fn func() error) error {
	fmt.Fprintf(w, "==> %s\n", name)
	s := Stage{Name: name, Started: r.d.Now().UTC()}
	j.Stage = &CurrentStage{Name: name, Started: s.Started}
	r.save(ctx, j)
	err := fn()
	s.Finished = r.d.Now().UTC()
	s.Millis = s.Finished.Sub(s.Started).Milliseconds()
	j.Stage = nil
	j.Stages = append(j.Stages, s)
	r.save(ctx, j)
	return err
}

// pipeline is the job proper: fetch, build, push, deploy, tag. Any error
// stops it where it is: nothing later runs. Nothing deploys unless every
// image is pushed, and -latest moves last: for a branch with a deploy
// target only once every service runs the new images, for one without
// once every image is pushed. A failed or rolled-back deploy leaves it on
// what the branch's services still run.
func (r *Runner) pipeline(ctx context.Context, j *Job, p *config.Project, w io.Writer) error {
	component, err := tagpolicy.BranchComponent(j.Branch)
	if err != nil {
		return err
	}
	// One work tree per lane (project and branch), updated in place by
	// each job: the queue runs one job of a lane at a time.
	dir := filepath.Join(r.workDir, laneDir(j))
	if err := os.MkdirAll(r.workDir, 0o700); err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}

	if err := r.stage(ctx, j, "fetch", w, func() error {
		repo, err := repoOf(p)
		if err != nil {
			return err
		}
		// The job builds what the branch holds now: a newer commit when
		// it has moved past this push, never an older one.
		tip, err := r.d.Source.Checkout(ctx, repo, j.Ref, j.Commit, dir, w)
		if err == nil {
			j.Commit = tip
		}
		return err
	}); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}

	if err := r.checkStack(ctx, j, p, dir); err != nil { // job/stack.go
		return err
	}
	stamp := r.timestamp(j.Project + "/" + component)
	for _, img := range p.Images {
		j.Images = append(j.Images, Image{Name: img.Name, Tag: tagpolicy.Timestamped(component, stamp), LatestTag: tagpolicy.Latest(component)})
	}
	// Every image of the job builds and pushes on one engine (job/engines.go).
	ctx, err = r.leaseEngine(ctx, j, p, w)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer func() { releaseEngine(ctx) }()
	// An overlap target the gate holds (a freeze) builds as a
	// sequential one, and waits before its deploy.
	if target, ok := p.DeployFor(j.Branch); ok && target.Pipeline == config.PipelineOverlap && !r.gated(j, p, target) {
		return r.overlap(ctx, j, p, target, dir, stamp, w) // job/overlap.go
	}
	if err := r.stage(ctx, j, "build", w, func() error {
		var err error
		ctx, err = r.buildOnEngine(ctx, j, p, w, func(ctx context.Context) error {
			return r.buildImages(ctx, j, p, dir, stamp, w)
		})
		return err
	}); err != nil {
		return fmt.Errorf("build: %w", err)
	}

	if err := r.stage(ctx, j, "push", w, func() error {
		for i := range j.Images {
			if err := r.pushImage(ctx, j, i, w); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("push: %w", err)
	}

	// The engine is done with: a deploy (or a gate) may take long.
	releaseEngine(ctx)
	// Once the images are pushed old ones may go, whatever the deploy
	// does; but after it, on the engine that built them: listing a busy
	// engine's images takes half a second the services need not wait for.
	defer r.pruneImages(ctx, j, w)

	if target, ok := p.DeployFor(j.Branch); ok && target.Stack != nil {
		if r.gated(j, p, target) {
			// The compose file is read from this job's checkout, which
			// goes with the run: a stack deploy cannot wait.
			return fmt.Errorf("deploy: a freeze holds deploys to this target, and a stack deploy cannot wait for its end: push again once it ends")
		}
		if err := r.deployStack(ctx, j, p, target, dir, w); err != nil { // job/stack.go
			return err
		}
	} else if ok {
		if err := r.gateDeploy(ctx, j, p, target, w); err != nil {
			return err
		}
		if err := r.deploy(ctx, j, p, target, w); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "no deploy target matches %s: built and pushed only\n", j.Branch)
	}
	return r.tagLatest(ctx, j, w)
}

// tagLatest moves every image's -latest to the job's build, in one
// stage: the last step of a build, once every image is pushed and every
// service of the branch runs it.
func (r *Runner) tagLatest(ctx context.Context, j *Job, w io.Writer) error {
	if err := r.stage(ctx, j, "tag", w, func() error {
		for i := range j.Images {
			if err := r.tagImage(ctx, j, i, w); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	return nil
}

// buildImages builds every image of p, p.Build.Parallelism at a time,
// within p.Build.Timeout. The first failure cancels the builds still
// running. With more than one build at a time each log line names its
// image.
func (r *Runner) buildImages(ctx context.Context, j *Job, p *config.Project, dir string, stamp time.Time, w io.Writer) error {
	ctx, cancel := buildDeadline(ctx, p)
	defer cancel()
	parallel := max(p.Build.Parallelism, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := range p.Images {
		g.Go(func() error {
			iw := w
			if parallel > 1 && len(p.Images) > 1 {
				pw := &linePrefixer{w: w, prefix: "[" + p.Images[i].Name + "] "}
				defer pw.Flush()
				iw = pw
			}
			return r.buildImage(gctx, j, p, i, dir, stamp, iw)
		})
	}
	return withCause(ctx, g.Wait())
}

// buildDeadline bounds a job's builds by projects[].build.timeout.
func buildDeadline(ctx context.Context, p *config.Project) (context.Context, context.CancelFunc) {
	t := p.Build.Timeout.Duration
	if t <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, t, fmt.Errorf("builds timed out after %s (projects[].build.timeout)", t))
}

// withCause puts why ctx ended (a build timeout, say) in front of err,
// when err came after ctx ended.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); err != nil && cause != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// buildImage builds p.Images[i] of job j from the work tree in dir and
// tags it with j.Images[i].Tag.
func (r *Runner) buildImage(ctx context.Context, j *Job, p *config.Project, i int, dir string, stamp time.Time, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err // another image failed or time is up: start nothing new
	}
	img, im := p.Images[i], j.Images[i]
	ref := r.d.Registry.Ref(img.Name, im.Tag)
	fmt.Fprintf(w, "--- building %s\n", ref)
	vars := map[string]string{
		"commit": j.Commit, "short_commit": j.Commit[:min(12, len(j.Commit))], "branch": j.Branch,
		"timestamp": stamp.UTC().Format(tagpolicy.TimestampLayout), "tag": im.Tag,
	}
	args := make(map[string]string, len(img.BuildArgs))
	for k, v := range img.BuildArgs {
		args[k] = config.ExpandPlaceholders(v, vars)
	}
	lbls := maps.Clone(img.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	created, err := treeTime(dir)
	if err != nil {
		return err
	}
	maps.Copy(lbls, labels(p, j, created))
	_, err = r.builder(ctx).Build(ctx, builder.Request{
		WorkTree:   dir,
		ContextDir: filepath.Join(dir, img.Context),
		Dockerfile: img.Dockerfile,
		Tags:       []string{ref},
		BuildArgs:  args,
		Labels:     lbls,
		Target:     img.Target,
		NoCache:    img.NoCache,
		Secrets:    img.Secrets,
		CacheFrom:  r.cacheFrom(img, im),
	}, w)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Name, err)
	}
	return nil
}

// pushImage pushes j.Images[i]'s timestamped tag, once, retrying
// transient registry failures, restamps it with the commit's time (see
// Tagger.Restamp: the same commit then has the same digest whichever
// engine built it, cache or none, except that BuildKit's inline cache,
// written with docker.builders, records when its steps ran) and records
// the digest.
func (r *Runner) pushImage(ctx context.Context, j *Job, i int, w io.Writer) error {
	im := &j.Images[i]
	ref := r.d.Registry.Ref(im.Name, im.Tag)
	fmt.Fprintf(w, "--- pushing %s\n", ref)
	var digest string
	err := r.retry(ctx, w, "push "+ref, func() error {
		var err error
		digest, err = r.builder(ctx).Push(ctx, ref, w)
		return err
	})
	if err != nil {
		return err
	}
	if digest, err = r.d.Registry.Restamp(ctx, im.Name, im.Tag, digest, w); err != nil {
		return err
	}
	im.Digest, im.Ref = digest, imageref.Pinned(ref, digest)
	return nil
}

// tagImage moves j.Images[i]'s -latest tag to the pushed manifest with one
// manifest PUT; the registry client retries transient failures and says
// so in w.
func (r *Runner) tagImage(ctx context.Context, j *Job, i int, w io.Writer) error {
	im := j.Images[i]
	latest := r.d.Registry.Ref(im.Name, im.LatestTag)
	if _, err := r.d.Registry.Retag(ctx, im.Name, im.Tag, im.LatestTag, im.Digest, w); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s now at %s\n", latest, im.Digest)
	return nil
}

// pruneImages removes the engine's superseded builds of j's images,
// keeping docker.keep_images of each. A failure only goes to the log:
// the job's images are pushed and tagged by now.
func (r *Runner) pruneImages(ctx context.Context, j *Job, w io.Writer) {
	pruner := r.pruner(ctx)
	if pruner == nil {
		return
	}
	for _, im := range j.Images {
		repo := imageref.Repository(r.d.Registry.Ref(im.Name, im.Tag))
		if _, err := pruner.Prune(ctx, repo, max(r.cfg.Docker.KeepImages, 1), w); err != nil {
			fmt.Fprintf(w, "pruning old images of %s: %v\n", repo, err)
		}
	}
}

// retry runs fn, and again after a pause while it fails with a transient
// registry error, up to registry.retries more times, the pause doubling
// from registry.retry_backoff. Each failed attempt and why goes to w.
// Engine pushes need it: the Docker client has no retry of its own.
// Registry calls retry inside the registry client (registry.WithRetries).
func (r *Runner) retry(ctx context.Context, w io.Writer, what string, fn func() error) error {
	retries, backoff := 0, r.cfg.Registry.RetryBackoff.Duration
	if r.cfg.Registry.Retries != nil {
		retries = *r.cfg.Registry.Retries
	}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				fmt.Fprintf(w, "%s: attempt %d of %d succeeded\n", what, attempt, retries+1)
			}
			return nil
		}
		if !transient(err) {
			return err
		}
		if attempt > retries {
			if retries == 0 {
				return err
			}
			return fmt.Errorf("%s: gave up after %d attempts: %w", what, attempt, err)
		}
		fmt.Fprintf(w, "%s: attempt %d of %d failed with a transient error, retrying in %s: %v\n", what, attempt, retries+1, backoff, err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		backoff *= 2
	}
}

// transient reports whether a push or tag failure is worth another try.
func transient(err error) bool {
	return errors.Is(err, builder.ErrTransient) || registry.IsTransient(err)
}

// linePrefixer writes whole lines to w, each starting with prefix, so
// builds running side by side keep their lines apart in one job log.
type linePrefixer struct {
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *linePrefixer) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append([]byte(l.prefix), l.buf[:i+1]...)
		l.buf = l.buf[i+1:]
		if _, err := l.w.Write(line); err != nil {
			return len(p), err
		}
	}
}

// Flush writes a last line that has no newline.
func (l *linePrefixer) Flush() {
	if len(l.buf) > 0 {
		l.Write([]byte{'\n'})
	}
}

// labels are set on every image: the OCI ones and the project's. They
// depend on the commit and the config only, never on the job or the
// clock, so the same commit builds the same image: created is the
// commit's time, and which job built it stays in the job's record.
func labels(p *config.Project, j *Job, created time.Time) map[string]string {
	return map[string]string{
		"org.opencontainers.image.revision": j.Commit,
		"org.opencontainers.image.source":   redactURL(p.Repo),
		"org.opencontainers.image.created":  created.UTC().Format(time.RFC3339),
		builder.ProjectLabel:                p.Name,
	}
}

// laneDir names the work tree of j's lane under the work directory.
func laneDir(j *Job) string {
	sum := sha256.Sum256([]byte(laneKey(j)))
	return hex.EncodeToString(sum[:12])
}

// treeTime is the commit time of the work tree in dir, which Checkout
// sets as its modification time.
func treeTime(dir string) (time.Time, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return time.Time{}, fmt.Errorf("read work tree time: %w", err)
	}
	return fi.ModTime(), nil
}

// redactURL drops any user:password from a clone URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// repoOf says where and how to fetch a project's repository. A deploy
// key is read afresh each time, so replacing the file needs no restart.
func repoOf(p *config.Project) (source.Repo, error) {
	repo := source.Repo{URL: p.Repo, Submodules: p.Git.Submodules}
	switch g := p.Git; {
	case g.Token != "":
		repo.Auth = source.TokenAuth(g.Username, g.Token)
	case g.SSHKeyFile != "":
		auth, err := source.DeployKeyAuth(p.Repo, g.SSHKeyFile, g.SSHKeyPassphrase, g.KnownHosts)
		if err != nil {
			return source.Repo{}, err
		}
		repo.Auth = auth
	}
	return repo, nil
}

// Head returns the commit a project's ref points at now, for manual
// redeploys of a branch head.
func (r *Runner) Head(ctx context.Context, p *config.Project, ref string) (string, error) {
	repo, err := repoOf(p)
	if err != nil {
		return "", err
	}
	return r.d.Source.Head(ctx, repo, ref)
}
