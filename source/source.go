package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"golang.org/x/sys/unix"

	"github.com/swarmhook/swarmhook/internal/keylock"
)

// ErrCommitNotFound means the pushed commit is not on the pushed ref any
// more, usually because it was force-pushed away.
var ErrCommitNotFound = errors.New("source: commit not found")

// Repo is a repository to fetch from.
type Repo struct {
	// URL is the clone URL.
	URL string
	// Auth authenticates the fetch; nil for none. Submodules are fetched
	// with the same.
	Auth transport.AuthMethod
	// Submodules checks out the commit's submodules too, recursively.
	Submodules bool
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
// mirror and makes dest hold exactly the tree of ref's tip as just
// fetched, and returns that tip. commit, the pushed one, must be the tip
// or in its history. When ref has moved past it (a later push arrived, or
// this one was re-sent or delivered late), the tip is checked out, never
// the older commit, and the log says so. When commit is not on ref
// (force-pushed away, or never there) Checkout fails with
// ErrCommitNotFound, naming the tip.
//
// dest may be a work tree an earlier Checkout left: then only the files
// that differ between its commit and the tip are rewritten and those the
// tip lacks removed, which makes a small push cost milliseconds. Which
// commit dest holds is noted beside it (dest + ".commit") only once it
// holds exactly that commit; without that note dest is removed and
// written afresh. The caller must not use dest from two Checkouts at
// once, nor write into it.
//
// Every file, directory and symlink of dest, dest itself included, gets
// the commit's committer time as its modification time, so what a build
// copies from it is the same for the same commit however it was checked
// out.
func (m *Mirrors) Checkout(ctx context.Context, repo Repo, ref, commit, dest string, log io.Writer) (string, error) {
	r, tip, err := m.fetchTip(ctx, repo, ref, commit, log)
	if err != nil {
		return "", err
	}
	note := dest + ".commit"
	old := m.previous(r, repo, note, dest)
	if err := os.Remove(note); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("clear work tree note: %w", err)
	}
	if old == nil {
		if err := os.RemoveAll(dest); err != nil {
			return "", fmt.Errorf("remove old work tree: %w", err)
		}
		if err := os.Mkdir(dest, 0o700); err != nil {
			return "", fmt.Errorf("create work tree: %w", err)
		}
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return "", fmt.Errorf("open work tree: %w", err)
	}
	defer root.Close()
	var keep map[string]object.TreeEntry // nil: dest was written afresh
	if old != nil {
		keep, err = m.update(ctx, r, old, tip, root, log)
	} else {
		err = m.checkout(ctx, r, repo, tip, root, log, 0)
	}
	if err != nil {
		return "", err
	}
	c, err := r.CommitObject(plumbing.NewHash(tip))
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", tip, err)
	}
	if err := stampTimes(root, c.Committer.When, keep); err != nil {
		return "", fmt.Errorf("set file times: %w", err)
	}
	if err := os.WriteFile(note, []byte(tip), 0o600); err != nil {
		return "", fmt.Errorf("note work tree commit: %w", err)
	}
	return tip, nil
}

// previous is the commit dest holds, by the note beside it, when it can
// be updated in place: the note names a commit the mirror has, and no
// submodules are involved. Otherwise nil.
func (m *Mirrors) previous(r *git.Repository, repo Repo, note, dest string) *object.Commit {
	if repo.Submodules {
		return nil
	}
	b, err := os.ReadFile(note)
	if err != nil {
		return nil
	}
	if fi, err := os.Lstat(dest); err != nil || !fi.IsDir() {
		return nil
	}
	c, err := r.CommitObject(plumbing.NewHash(strings.TrimSpace(string(b))))
	if err != nil {
		return nil
	}
	return c
}

// update turns root, which holds exactly old's tree, into tip's: entries
// whose mode and object are unchanged stay, every other one is written
// anew, and what tip lacks is removed. It returns tip's entries by path.
func (m *Mirrors) update(ctx context.Context, r *git.Repository, old *object.Commit, tip string, root *os.Root, log io.Writer) (map[string]object.TreeEntry, error) {
	c, err := r.CommitObject(plumbing.NewHash(tip))
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", tip, err)
	}
	fmt.Fprintf(log, "updating the work tree from %s to %s (%s)\n", old.Hash.String()[:12], tip[:12], firstLine(c.Message))
	was, err := treeEntries(ctx, old)
	if err != nil {
		return nil, err
	}
	now, err := treeEntries(ctx, c)
	if err != nil {
		return nil, err
	}
	changed := 0
	for _, name := range now.order {
		e := now.byPath[name]
		if o, ok := was.byPath[name]; ok && o.Mode == e.Mode && (o.Hash == e.Hash || e.Mode == filemode.Dir) {
			continue
		}
		if e.Mode == filemode.Dir {
			if fi, err := root.Lstat(name); err == nil && fi.IsDir() {
				continue
			}
		}
		if err := root.RemoveAll(name); err != nil {
			return nil, fmt.Errorf("replace %s: %w", name, err)
		}
		if err := writeEntry(root, r.Storer, name, e); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		changed++
	}
	removed := 0
	for _, name := range was.order {
		if _, ok := now.byPath[name]; ok {
			continue
		}
		// A parent replaced by a file already took it (ENOTDIR).
		if err := root.RemoveAll(name); err != nil && !errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("remove %s: %w", name, err)
		}
		removed++
	}
	fmt.Fprintf(log, "%d entries written, %d removed, %d unchanged\n", changed, removed, len(now.order)-changed)
	return now.byPath, nil
}

// entries are a tree's entries by path, and their paths in tree order.
type entries struct {
	byPath map[string]object.TreeEntry
	order  []string
}

// treeEntries lists every entry of c's tree, recursively.
func treeEntries(ctx context.Context, c *object.Commit) (entries, error) {
	tree, err := c.Tree()
	if err != nil {
		return entries{}, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	es := entries{byPath: map[string]object.TreeEntry{}}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, e, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return es, nil
		}
		if err != nil {
			return entries{}, fmt.Errorf("walk tree: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return entries{}, err
		}
		if !filepath.IsLocal(name) {
			return entries{}, fmt.Errorf("tree entry %q escapes the work tree", name)
		}
		if e.Mode == filemode.Submodule {
			return entries{}, fmt.Errorf("tree entry %q is a submodule", name)
		}
		if _, dup := es.byPath[name]; dup {
			return entries{}, fmt.Errorf("tree entry %q appears twice", name)
		}
		es.byPath[name] = e
		es.order = append(es.order, name)
	}
}

// stampTimes sets the modification time of everything under root, and
// root's own, to t, symlinks themselves rather than what they point at,
// directories last so writing inside them changes nothing after. When
// keep is not nil, whatever it does not list is removed on the way: the
// work tree then holds nothing but the commit's files, even if something
// was written into it since the last checkout.
func stampTimes(root *os.Root, t time.Time, keep map[string]object.TreeEntry) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	var dirs []string
	err := fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, ok := keep[name]; keep != nil && name != "." && !ok {
			if err := root.RemoveAll(name); err != nil {
				return fmt.Errorf("remove stray %s: %w", name, err)
			}
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, name)
			return nil
		}
		return setTime(root, name, ts)
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := setTime(root, d, ts); err != nil {
			return err
		}
	}
	return nil
}

// setTime sets name's times without following a symlink, opening its
// directory through root so nothing outside it can be reached.
func setTime(root *os.Root, name string, ts []unix.Timespec) error {
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	base := path.Base(name)
	if name == "." {
		base = "."
	}
	if err := unix.UtimesNanoAt(int(dir.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", name, err)
	}
	return nil
}

// Memory bounds for a mirror. go-git's defaults cache 96 MB of objects
// and read every object whole into memory; a build needs each blob once,
// streamed to disk, so a small cache does, and blobs above largeObject
// are read from the pack as they are written out.
const (
	objectCache = 8 * cache.MiByte
	largeObject = 1 << 20
)

// maxSubmoduleDepth bounds submodules of submodules, against cycles.
const maxSubmoduleDepth = 8

// checkout writes commit's tree from its mirror r into root, then its
// submodules'.
func (m *Mirrors) checkout(ctx context.Context, r *git.Repository, repo Repo, commit string, root *os.Root, log io.Writer, depth int) error {
	c, err := r.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return fmt.Errorf("read commit %s: %w", commit, err)
	}
	fmt.Fprintf(log, "checking out %s (%s)\n", commit[:12], firstLine(c.Message))
	subs, err := writeTree(ctx, r.Storer, c, root)
	if err != nil || !repo.Submodules || len(subs) == 0 {
		return err
	}
	if depth >= maxSubmoduleDepth {
		return fmt.Errorf("submodules nested deeper than %d", maxSubmoduleDepth)
	}
	modules, err := readModules(c)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if err := m.checkoutSubmodule(ctx, repo, modules, sub, root, log, depth); err != nil {
			return fmt.Errorf("submodule %s: %w", sub.path, err)
		}
	}
	return nil
}

// submodule is a gitlink entry of a tree: a path and the commit it pins.
type submodule struct {
	path   string
	commit plumbing.Hash
}

// readModules parses the commit's .gitmodules, keyed by path.
func readModules(c *object.Commit) (map[string]*gitconfig.Submodule, error) {
	f, err := c.File(".gitmodules")
	if err != nil {
		return nil, fmt.Errorf("read .gitmodules: %w", err)
	}
	body, err := f.Contents()
	if err != nil {
		return nil, fmt.Errorf("read .gitmodules: %w", err)
	}
	mods := gitconfig.NewModules()
	if err := mods.Unmarshal([]byte(body)); err != nil {
		return nil, fmt.Errorf("parse .gitmodules: %w", err)
	}
	byPath := map[string]*gitconfig.Submodule{}
	for _, s := range mods.Submodules {
		byPath[s.Path] = s
	}
	return byPath, nil
}

// checkoutSubmodule writes the pinned commit of sub into its directory,
// fetching every branch and tag of its repository: the pinned commit is
// on one of them, and which one is not recorded.
func (m *Mirrors) checkoutSubmodule(ctx context.Context, parent Repo, modules map[string]*gitconfig.Submodule, sub submodule, root *os.Root, log io.Writer, depth int) error {
	mod, ok := modules[sub.path]
	if !ok {
		return errors.New("not listed in .gitmodules")
	}
	u, err := resolveSubmoduleURL(parent.URL, mod.URL)
	if err != nil {
		return err
	}
	subRoot, err := root.OpenRoot(sub.path)
	if err != nil {
		return fmt.Errorf("open submodule directory: %w", err)
	}
	defer subRoot.Close()
	fmt.Fprintf(log, "submodule %s at %s\n", sub.path, sub.commit.String()[:12])
	repo := Repo{URL: u, Auth: parent.Auth, Submodules: true}
	r, err := m.fetchCommit(ctx, repo, []string{"refs/heads/*", "refs/tags/*"}, sub.commit.String(), log)
	if err != nil {
		return err
	}
	return m.checkout(ctx, r, repo, sub.commit.String(), subRoot, log, depth+1)
}

// fetchTip fetches ref into repo's mirror, even when commit is there
// already: only the repository knows where ref is now. It returns the
// mirror and ref's tip, provided commit is the tip or in its history.
func (m *Mirrors) fetchTip(ctx context.Context, repo Repo, ref, commit string, log io.Writer) (*git.Repository, string, error) {
	var tip plumbing.Hash
	r, err := m.withMirror(repo, func(r *git.Repository) error {
		if err := fetchRefs(ctx, r, repo, []string{ref}, log); err != nil {
			return err
		}
		var err error
		tip, err = refCommit(r, ref)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	pushed := plumbing.NewHash(commit)
	if tip == pushed {
		return r, tip.String(), nil
	}
	// The fetch brought all of the tip's history: a commit the mirror
	// lacks is not on it, and needs no walk.
	behind := false
	if _, err := r.CommitObject(pushed); err == nil {
		if behind, err = isAncestor(ctx, r, pushed, tip); err != nil {
			return nil, "", fmt.Errorf("look for %s on %s: %w", commit, ref, err)
		}
	}
	if !behind {
		return nil, "", fmt.Errorf("%w: %s is not on %s (now at %s): force-pushed away?", ErrCommitNotFound, commit, ref, tip)
	}
	fmt.Fprintf(log, "%s has moved on from %s to %s: checking out %s, never a commit older than the branch\n", ref, commit, tip, tip.String()[:12])
	return r, tip.String(), nil
}

// fetchCommit brings commit into repo's mirror, fetching refs unless it
// is there already. Submodules use it: a pinned commit need not be any
// branch's tip.
func (m *Mirrors) fetchCommit(ctx context.Context, repo Repo, refs []string, commit string, log io.Writer) (*git.Repository, error) {
	return m.withMirror(repo, func(r *git.Repository) error {
		if _, err := r.CommitObject(plumbing.NewHash(commit)); err == nil {
			fmt.Fprintf(log, "commit %s already in the mirror, no fetch needed\n", commit[:12])
			return nil
		}
		if err := fetchRefs(ctx, r, repo, refs, log); err != nil {
			return err
		}
		if _, err := r.CommitObject(plumbing.NewHash(commit)); err != nil {
			return fmt.Errorf("%w: %s is not on %s", ErrCommitNotFound, commit, strings.Join(refs, " "))
		}
		return nil
	})
}

// withMirror opens repo's mirror, creating it first, and runs fn on it
// holding the mirror's lock, so fetches into one mirror never overlap.
func (m *Mirrors) withMirror(repo Repo, fn func(*git.Repository) error) (*git.Repository, error) {
	sum := sha256.Sum256([]byte(repo.URL))
	key := hex.EncodeToString(sum[:12])
	defer m.locks.Lock(key)()
	st := filesystem.NewStorageWithOptions(osfs.New(filepath.Join(m.dir, key)), cache.NewObjectLRU(objectCache),
		filesystem.Options{LargeObjectThreshold: largeObject, ExclusiveAccess: true})
	r, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.Init(st, nil)
		if err == nil {
			_, err = r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{repo.URL}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open mirror: %w", err)
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	return r, nil
}

// fetchRefs fetches refs into mirror r, forced, as the repository has
// them now.
func fetchRefs(ctx context.Context, r *git.Repository, repo Repo, refs []string, log io.Writer) error {
	ref := strings.Join(refs, " ")
	fmt.Fprintf(log, "fetching %s\n", ref)
	var specs []gitconfig.RefSpec
	for _, r := range refs {
		specs = append(specs, gitconfig.RefSpec("+"+r+":"+r))
	}
	err := r.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  repo.URL,
		RefSpecs:   specs,
		Auth:       repo.Auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		fmt.Fprintf(log, "%s already up to date\n", ref)
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", ref, err)
	}
	return nil
}

// refCommit is the commit ref points at in mirror r, an annotated tag
// peeled.
func refCommit(r *git.Repository, ref string) (plumbing.Hash, error) {
	rf, err := r.Reference(plumbing.ReferenceName(ref), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read %s: %w", ref, err)
	}
	tag, err := r.TagObject(rf.Hash())
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return rf.Hash(), nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read tag %s: %w", ref, err)
	}
	c, err := tag.Commit()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read tag %s: %w", ref, err)
	}
	return c.Hash, nil
}

// isAncestor reports whether commit is in tip's history, walking it under
// ctx.
func isAncestor(ctx context.Context, r *git.Repository, commit, tip plumbing.Hash) (bool, error) {
	c, err := r.CommitObject(tip)
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", tip, err)
	}
	iter := object.NewCommitPreorderIter(c, nil, nil)
	defer iter.Close()
	found := false
	err = iter.ForEach(func(c *object.Commit) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.Hash == commit {
			found = true
			return storer.ErrStop
		}
		return nil
	})
	return found, err
}

// writeTree writes every file of c's tree into root. Writes go through an
// os.Root, so neither a ".." name nor a symlink in the tree can reach
// outside it. Submodules are left as empty directories and returned.
func writeTree(ctx context.Context, objects storer.EncodedObjectStorer, c *object.Commit, root *os.Root) ([]submodule, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree: %w", err)
	}
	var subs []submodule
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return subs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("walk tree: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("tree entry %q escapes the work tree", name)
		}
		if err := writeEntry(root, objects, name, entry); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		if entry.Mode == filemode.Submodule {
			subs = append(subs, submodule{path: name, commit: entry.Hash})
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
