package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Whoever can push writes the Dockerfile and .dockerignore; real ones
// are a few kilobytes.
const (
	// maxDockerfile bounds the Dockerfile, which the engine reads whole.
	maxDockerfile = 4 << 20
	// maxDockerignore bounds .dockerignore, smaller: its patterns become
	// regular expressions here, for every build at once, and 4 MiB of
	// them took 1 GB and 14 s to match 600 files (measured).
	maxDockerignore = 256 << 10
	// maxIgnorePatterns bounds the patterns of a .dockerignore: every file
	// of the context is matched against each, and 128k short ones took
	// 3 ms a file (measured).
	maxIgnorePatterns = 10_000
)

// maxSymlinks bounds the symlinks followed to resolve one path, as the
// kernel's does (ELOOP), against link cycles.
const maxSymlinks = 40

// ContextTar streams contextDir as a build context: the files docker
// build would send, with .dockerignore applied, owned by root.
// dockerfile is relative to contextDir and is always sent, as is
// .dockerignore, even when ignored, as docker build does. The caller
// closes the reader.
//
// contextDir must lie in workTree, and so must everything it, the
// Dockerfile and .dockerignore resolve to, symlinks followed: a
// repository decides what its symlinks point at, so one leading out of
// the work tree is an error naming it. The Dockerfile and .dockerignore
// must be regular files of at most 4 MiB and 256 KiB, the latter with at
// most 10,000 patterns; .dockerignore is read under ctx. Symlinks inside
// the context are sent as symlinks, never followed, so no host file
// reaches the tar. workTree must not change while the tar is read
// (swarmhook writes a job's work tree before its builds).
func ContextTar(ctx context.Context, workTree, contextDir, dockerfile string) (io.ReadCloser, error) {
	c, err := checkContext(ctx, workTree, contextDir, dockerfile)
	if err != nil {
		return nil, err
	}
	return c.tar()
}

// tar streams the context as the classic builder takes it.
func (c buildContext) tar() (io.ReadCloser, error) {
	tar, err := archive.TarWithOptions(c.dir, &archive.TarOptions{
		ExcludePatterns: c.excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("tar build context: %w", err)
	}
	return tar, nil
}

// buildContext is a build context checked by checkContext: every path
// in it resolved inside the work tree, with no symlink on it.
type buildContext struct {
	// dir is the context directory on disk.
	dir string
	// dockerfile is the Dockerfile, resolved, relative to dir.
	dockerfile string
	// excludes are .dockerignore's patterns, the Dockerfile and
	// .dockerignore re-included.
	excludes []string
}

// checkContext makes the checks ContextTar documents and returns where
// the context and its Dockerfile really are.
func checkContext(ctx context.Context, workTree, contextDir, dockerfile string) (buildContext, error) {
	if !filepath.IsLocal(dockerfile) {
		return buildContext{}, fmt.Errorf("dockerfile %q is outside the build context", dockerfile)
	}
	rel, err := filepath.Rel(workTree, contextDir)
	if err != nil || (rel != "." && !filepath.IsLocal(rel)) {
		return buildContext{}, fmt.Errorf("context %s is outside the work tree %s", contextDir, workTree)
	}
	root, err := os.OpenRoot(workTree)
	if err != nil {
		return buildContext{}, fmt.Errorf("open work tree: %w", err)
	}
	defer root.Close()

	dir, err := resolve(root, filepath.ToSlash(rel))
	if err != nil {
		return buildContext{}, fmt.Errorf("context %q: %w", filepath.ToSlash(rel), err)
	}
	if fi, err := root.Lstat(dir); err != nil || !fi.IsDir() {
		return buildContext{}, fmt.Errorf("context %q is not a directory", filepath.ToSlash(rel))
	}
	df, err := resolve(root, path.Join(dir, filepath.ToSlash(dockerfile)))
	if err != nil {
		return buildContext{}, fmt.Errorf("dockerfile %q: %w", dockerfile, err)
	}
	dfInContext, ok := below(dir, df)
	if !ok {
		return buildContext{}, fmt.Errorf("dockerfile %q resolves to %s, outside the context", dockerfile, df)
	}
	if _, err := regularFile(root, df, maxDockerfile); err != nil {
		return buildContext{}, fmt.Errorf("dockerfile %q: %w", dockerfile, err)
	}
	excludes, err := readDockerignore(ctx, root, dir)
	if err != nil {
		return buildContext{}, err
	}
	excludes, err = keepBuildFiles(excludes, filepath.ToSlash(dockerfile), dfInContext)
	if err != nil {
		return buildContext{}, err
	}
	return buildContext{dir: filepath.Join(workTree, filepath.FromSlash(dir)), dockerfile: dfInContext, excludes: excludes}, nil
}

// resolve returns name, a slash-separated path relative to root, with
// every symlink on it followed: a clean relative path that has no
// symlink in it. A link that is absolute or climbs out of root is an
// error naming the link and its target.
func resolve(root *os.Root, name string) (string, error) {
	var done []string // resolved components: real directories, then the result
	todo := strings.Split(name, "/")
	for links := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", fmt.Errorf("%s leads outside the work tree through a symlink", name)
			}
			done = done[:len(done)-1]
			continue
		}
		p := path.Join(append(done, c)...)
		fi, err := root.Lstat(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("%s: more than %d symlinks", name, maxSymlinks)
		}
		target, err := root.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("read symlink %s: %w", p, err)
		}
		if escapes(done, target) {
			return "", fmt.Errorf("%s is a symlink to %s, outside the work tree", p, target)
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// escapes reports whether target, a symlink's text in directory dir,
// points outside the root dir is relative to.
func escapes(dir []string, target string) bool {
	if path.IsAbs(target) {
		return true
	}
	depth := len(dir)
	for c := range strings.SplitSeq(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// unwrapPath drops the *fs.PathError around err: its path is the one
// the caller names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// below returns name relative to dir when it is dir or below it.
func below(dir, name string) (string, bool) {
	if dir == "." {
		return name, name != "."
	}
	rest, ok := strings.CutPrefix(name, dir+"/")
	return rest, ok
}

// regularFile checks that name, resolved, is a regular file of at most
// limit bytes and returns its size.
func regularFile(root *os.Root, name string, limit int64) (int64, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return 0, err
	}
	return checkRegular(name, fi, limit)
}

func checkRegular(name string, fi fs.FileInfo, limit int64) (int64, error) {
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", name)
	}
	if fi.Size() > limit {
		return 0, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, fi.Size(), limit)
	}
	return fi.Size(), nil
}

// readDockerignore reads the patterns of dir's .dockerignore, none when
// there is none.
func readDockerignore(ctx context.Context, root *os.Root, dir string) ([]string, error) {
	name, err := resolve(root, path.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := regularFile(root, name, maxDockerignore); err != nil {
		return nil, err
	}
	// O_NONBLOCK: should the file have become a FIFO, opening it must
	// not wait for a writer.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if _, err := checkRegular(name, fi, maxDockerignore); err != nil {
		return nil, err
	}
	patterns, err := ignorefile.ReadAll(ctxReader{ctx, io.LimitReader(f, maxDockerignore)})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(patterns) > maxIgnorePatterns {
		return nil, fmt.Errorf("%s has %d patterns, more than the %d allowed", name, len(patterns), maxIgnorePatterns)
	}
	return patterns, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// keepBuildFiles re-includes the Dockerfile (as named, and what it
// resolves to) and .dockerignore when a pattern excludes them: the
// engine needs the one, and docker build always sends the other.
func keepBuildFiles(excludes []string, dockerfiles ...string) ([]string, error) {
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	keep := excludes
	for _, name := range append([]string{".dockerignore"}, dockerfiles...) {
		if ignored, _ := pm.MatchesOrParentMatches(name); ignored {
			keep = append(keep, "!"+name)
		}
	}
	return keep, nil
}
