package job

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// removeWorkTrees deletes everything under the work directory: the work
// trees of jobs a previous process left behind when it died (a job
// removes its own when it ends). It must run while no job of this runner
// runs, as Resume does. It goes on past a tree it cannot remove and
// returns every failure joined.
func (r *Runner) removeWorkTrees() error {
	entries, err := os.ReadDir(r.workDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read work dir: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(r.workDir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("remove leftover work tree: %w", err))
		}
	}
	return errors.Join(errs...)
}
