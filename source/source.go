package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/swarmhook/swarmhook/internal/keylock"
)

// ErrCommitNotFound means the pushed commit is not on the pushed ref any
// more, usually because it was force-pushed away.
var ErrCommitNotFound = errors.New("source: commit not found")

// Repo is a repository to fetch from.
type Repo struct {
	// URL is the clone URL.
	URL string
	// Auth authenticates the fetch; nil for none.
	Auth transport.AuthMethod
}

// Mirrors keeps one bare mirror per repository URL. It is safe for
// concurrent use: fetches into one mirror are serialized, checkouts of
// different jobs run side by side.
type Mirrors struct {
	dir   string
	locks keylock.Set
}

// NewMirrors keeps mirrors under dir, creating it if needed.
func NewMirrors(dir string) (*Mirrors, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create mirror dir: %w", err)
	}
	return &Mirrors{dir: dir}, nil
}

// Checkout fetches ref (refs/heads/x or refs/tags/x) from repo into its
// mirror and writes the tree of commit into dest, which must not exist yet.
// It fails with ErrCommitNotFound when the commit is not in the repository.
func (m *Mirrors) Checkout(ctx context.Context, repo Repo, ref, commit, dest string, log io.Writer) error {
	sum := sha256.Sum256([]byte(repo.URL))
	key := hex.EncodeToString(sum[:12])
	unlock := m.locks.Lock(key)
	r, err := m.fetch(ctx, filepath.Join(m.dir, key), repo, ref, commit, log)
	unlock()
	if err != nil {
		return err
	}
	c, err := r.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return fmt.Errorf("read commit %s: %w", commit, err)
	}
	fmt.Fprintf(log, "checking out %s (%s)\n", commit[:12], firstLine(c.Message))
	return writeTree(ctx, r.Storer, c, dest)
}

// fetch brings commit into the mirror at dir, creating the mirror first.
func (m *Mirrors) fetch(ctx context.Context, dir string, repo Repo, ref, commit string, log io.Writer) (*git.Repository, error) {
	r, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.PlainInit(dir, true)
		if err == nil {
			_, err = r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{repo.URL}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open mirror: %w", err)
	}
	if _, err := r.CommitObject(plumbing.NewHash(commit)); err == nil {
		fmt.Fprintf(log, "commit %s already in the mirror, no fetch needed\n", commit[:12])
		return r, nil
	}
	fmt.Fprintf(log, "fetching %s\n", ref)
	spec := gitconfig.RefSpec("+" + ref + ":" + ref)
	err = r.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  repo.URL,
		RefSpecs:   []gitconfig.RefSpec{spec},
		Auth:       repo.Auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("fetch %s: %w", ref, err)
	}
	if _, err := r.CommitObject(plumbing.NewHash(commit)); err != nil {
		return nil, fmt.Errorf("%w: %s is not on %s any more (force-pushed away?)", ErrCommitNotFound, commit, ref)
	}
	return r, nil
}

// writeTree writes every file of c's tree below dest. Writes go through an
// os.Root, so neither a ".." name nor a symlink in the tree can reach
// outside dest. Submodules are left as empty directories.
func writeTree(ctx context.Context, objects storer.EncodedObjectStorer, c *object.Commit, dest string) error {
	if err := os.Mkdir(dest, 0o700); err != nil {
		return fmt.Errorf("create work tree: %w", err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("open work tree: %w", err)
	}
	defer root.Close()
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("read tree: %w", err)
	}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk tree: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("tree entry %q escapes the work tree", name)
		}
		if err := writeEntry(root, objects, name, entry); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
}

func writeEntry(root *os.Root, objects storer.EncodedObjectStorer, name string, e object.TreeEntry) error {
	var perm os.FileMode = 0o644
	switch e.Mode {
	case filemode.Dir, filemode.Submodule:
		return root.MkdirAll(name, 0o755)
	case filemode.Regular, filemode.Deprecated:
	case filemode.Executable:
		perm = 0o755
	case filemode.Symlink:
	default:
		return nil
	}
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	blob, err := object.GetBlob(objects, e.Hash)
	if err != nil {
		return err
	}
	rd, err := blob.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	if e.Mode == filemode.Symlink {
		target, err := io.ReadAll(io.LimitReader(rd, 4096))
		if err != nil {
			return err
		}
		return root.Symlink(string(target), name)
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rd); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// Head asks the repository which commit ref points at now, without
// fetching anything.
func (m *Mirrors) Head(ctx context.Context, repo Repo, ref string) (string, error) {
	remote := git.NewRemote(nil, &gitconfig.RemoteConfig{Name: "origin", URLs: []string{repo.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: repo.Auth})
	if err != nil {
		return "", fmt.Errorf("list refs: %w", err)
	}
	for _, r := range refs {
		if r.Name().String() == ref {
			return r.Hash().String(), nil
		}
	}
	return "", fmt.Errorf("%w: %s does not exist", ErrCommitNotFound, ref)
}
