package builder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ContextTar streams dir as a build context: the files docker build would
// send, with .dockerignore applied, owned by root. dockerfile is relative
// to dir and is always sent, as is .dockerignore, even when ignored, as
// docker build does. The caller closes the reader.
func ContextTar(dir, dockerfile string) (io.ReadCloser, error) {
	if !filepath.IsLocal(dockerfile) {
		return nil, fmt.Errorf("dockerfile %q is outside the build context", dockerfile)
	}
	excludes, err := readDockerignore(dir)
	if err != nil {
		return nil, err
	}
	excludes = keepBuildFiles(excludes, dockerfile)
	tar, err := archive.TarWithOptions(dir, &archive.TarOptions{
		ExcludePatterns: excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("tar build context: %w", err)
	}
	return tar, nil
}

func readDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open .dockerignore: %w", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	return patterns, nil
}

// keepBuildFiles re-includes the Dockerfile and .dockerignore when a
// pattern excludes them: the engine needs the one, and docker build always
// sends the other.
func keepBuildFiles(excludes []string, dockerfile string) []string {
	if ignored, _ := patternmatcher.MatchesOrParentMatches(".dockerignore", excludes); ignored {
		excludes = append(excludes, "!.dockerignore")
	}
	dockerfile = filepath.ToSlash(dockerfile)
	if ignored, _ := patternmatcher.MatchesOrParentMatches(dockerfile, excludes); ignored {
		excludes = append(excludes, "!"+dockerfile)
	}
	return excludes
}
