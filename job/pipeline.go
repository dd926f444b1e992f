package job

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/tagpolicy"
)

// stage runs fn as a named, timed stage of j.
func (r *Runner) stage(ctx context.Context, j *Job, name string, w io.Writer, fn func() error) error {
	fmt.Fprintf(w, "==> %s\n", name)
	s := Stage{Name: name, Started: r.d.Now().UTC()}
	err := fn()
	s.Finished = r.d.Now().UTC()
	s.Millis = s.Finished.Sub(s.Started).Milliseconds()
	j.Stages = append(j.Stages, s)
	r.d.Store.Save(ctx, j)
	return err
}

// pipeline is the job proper: fetch, build, push, tag, deploy. Any error
// stops it where it is: nothing later runs.
func (r *Runner) pipeline(ctx context.Context, j *Job, p *config.Project, w io.Writer) error {
	component, err := tagpolicy.BranchComponent(j.Branch)
	if err != nil {
		return err
	}
	dir := filepath.Join(r.workDir, strconv.FormatInt(j.ID, 10))
	if err := os.MkdirAll(r.workDir, 0o700); err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)

	if err := r.stage(ctx, j, "fetch", w, func() error {
		return r.d.Source.Checkout(ctx, repoOf(p), j.Ref, j.Commit, dir, w)
	}); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}

	if target, ok := p.DeployFor(j.Branch); ok && target.Pipeline == config.PipelineOverlap {
		return r.overlap(ctx, j, p, target, dir, component, w) // job/overlap.go
	}

	stamp := r.timestamp(j.Project + "/" + component)
	for _, img := range p.Images {
		tag := tagpolicy.Timestamped(component, stamp)
		j.Images = append(j.Images, Image{Name: img.Name, Tag: tag, LatestTag: tagpolicy.Latest(component)})
	}
	if err := r.stage(ctx, j, "build", w, func() error {
		for i, img := range p.Images {
			fmt.Fprintf(w, "--- building %s\n", r.d.Registry.Ref(img.Name, j.Images[i].Tag))
			_, err := r.d.Builder.Build(ctx, builder.Request{
				ContextDir: filepath.Join(dir, img.Context),
				Dockerfile: img.Dockerfile,
				Tags:       []string{r.d.Registry.Ref(img.Name, j.Images[i].Tag)},
				BuildArgs:  img.BuildArgs,
				Labels:     labels(p, j, stamp),
			}, w)
			if err != nil {
				return fmt.Errorf("image %s: %w", img.Name, err)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("build: %w", err)
	}

	if err := r.stage(ctx, j, "push", w, func() error {
		for i := range j.Images {
			im := &j.Images[i]
			ref := r.d.Registry.Ref(im.Name, im.Tag)
			fmt.Fprintf(w, "--- pushing %s\n", ref)
			digest, err := r.d.Builder.Push(ctx, ref, w)
			if err != nil {
				return err
			}
			im.Digest, im.Ref = digest, ref+"@"+digest
		}
		return nil
	}); err != nil {
		return fmt.Errorf("push: %w", err)
	}

	// -latest moves only once every image of the job is pushed.
	if err := r.stage(ctx, j, "tag", w, func() error {
		for _, im := range j.Images {
			if _, err := r.d.Registry.Retag(ctx, im.Name, im.Tag, im.LatestTag, im.Digest); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s now at %s\n", r.d.Registry.Ref(im.Name, im.LatestTag), im.Digest)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("tag: %w", err)
	}

	target, ok := p.DeployFor(j.Branch)
	if !ok {
		fmt.Fprintf(w, "no deploy target matches %s: built and pushed only\n", j.Branch)
		return nil
	}
	return r.deploy(ctx, j, p, target, w)
}

// labels are set on every image: the OCI ones, and which job built it.
func labels(p *config.Project, j *Job, at time.Time) map[string]string {
	return map[string]string{
		"org.opencontainers.image.revision": j.Commit,
		"org.opencontainers.image.source":   redactURL(p.Repo),
		"org.opencontainers.image.created":  at.UTC().Format(time.RFC3339),
		"io.swarmhook.project":              p.Name,
		"io.swarmhook.job":                  strconv.FormatInt(j.ID, 10),
	}
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

// repoOf says where and how to fetch a project's repository.
func repoOf(p *config.Project) source.Repo {
	return source.Repo{URL: p.Repo}
}

// Head returns the commit a project's ref points at now, for manual
// redeploys of a branch head.
func (r *Runner) Head(ctx context.Context, p *config.Project, ref string) (string, error) {
	return r.d.Source.Head(ctx, repoOf(p), ref)
}
