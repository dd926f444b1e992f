package gate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmhook/swarmhook/config"
)

// ErrBadTarget means a freeze names no deploy target of the
// configuration.
var ErrBadTarget = errors.New("gate: no such deploy target")

// Freeze stops deploys to the targets it names until Until.
type Freeze struct {
	// Target is "*" (every target), a project ("shop"), an environment
	// of any project ("production"), or one project's environment
	// ("shop/production").
	Target string    `json:"target"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
	Who    string    `json:"who,omitempty"`
	Since  time.Time `json:"since"`
}

// Covers reports whether f names the target of environment env of
// project project.
func (f Freeze) Covers(project, env string) bool {
	switch p, e, scoped := strings.Cut(f.Target, "/"); {
	case f.Target == "*":
		return true
	case scoped:
		return p == project && e == env && env != ""
	default:
		return f.Target == project || (env != "" && f.Target == env)
	}
}

// CheckTarget fails with ErrBadTarget unless target, as a Freeze names
// it, covers at least one deploy target of cfg.
func CheckTarget(cfg *config.Config, target string) error {
	f := Freeze{Target: target}
	for _, p := range cfg.Projects {
		for _, d := range p.Deploy {
			if f.Covers(p.Name, d.Environment) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %q is not *, a project, an environment or project/environment", ErrBadTarget, target)
}

// Freezes are the freezes in force, kept in a JSON file so they outlast
// a restart. It is safe for concurrent use. The zero value keeps them in
// memory only.
type Freezes struct {
	path string
	mu   sync.Mutex
	list []Freeze
}

// OpenFreezes reads the freezes kept in path; a missing file holds none.
func OpenFreezes(path string) (*Freezes, error) {
	f := &Freezes{path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read freezes: %w", err)
	}
	if err := json.Unmarshal(data, &f.list); err != nil {
		return nil, fmt.Errorf("read freezes %s: %w", path, err)
	}
	return f, nil
}

// Active returns the freeze over environment env of project project
// that lasts longest, if one is in force at now.
func (fs *Freezes) Active(project, env string, now time.Time) (Freeze, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out Freeze
	found := false
	for _, f := range fs.list {
		if f.Until.After(now) && f.Covers(project, env) && (!found || f.Until.After(out.Until)) {
			out, found = f, true
		}
	}
	return out, found
}

// List returns the freezes in force at now.
func (fs *Freezes) List(now time.Time) []Freeze {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := []Freeze{}
	for _, f := range fs.list {
		if f.Until.After(now) {
			out = append(out, f)
		}
	}
	return out
}

// Set records f, replacing a freeze of the same target, and forgets
// those ended by now.
func (fs *Freezes) Set(f Freeze, now time.Time) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	list := slices.DeleteFunc(slices.Clone(fs.list), func(o Freeze) bool { return o.Target == f.Target || !o.Until.After(now) })
	return fs.save(append(list, f))
}

// Lift ends the freeze of target; false when there was none.
func (fs *Freezes) Lift(target string, now time.Time) (bool, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := len(fs.list)
	list := slices.DeleteFunc(slices.Clone(fs.list), func(o Freeze) bool { return o.Target == target || !o.Until.After(now) })
	found := slices.ContainsFunc(fs.list, func(o Freeze) bool { return o.Target == target && o.Until.After(now) })
	if len(list) == n {
		return found, nil
	}
	return found, fs.save(list)
}

// save writes list to the file, whole or not at all, and keeps it.
// Freezes without a file keep it in memory only.
func (fs *Freezes) save(list []Freeze) error {
	if fs.path == "" {
		fs.list = list
		return nil
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("save freezes: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(fs.path), ".freezes-*")
	if err != nil {
		return fmt.Errorf("save freezes: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save freezes: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save freezes: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save freezes: %w", err)
	}
	if err := os.Rename(tmp.Name(), fs.path); err != nil {
		return fmt.Errorf("save freezes: %w", err)
	}
	fs.list = list // the file holds it now, as memory must
	// The rename is durable once the directory is: a crash must not
	// bring back the file from before a freeze was set.
	if err := syncDir(filepath.Dir(fs.path)); err != nil {
		return fmt.Errorf("save freezes: in force, but may not outlast a crash: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
