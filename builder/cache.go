package builder

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// pullCache pulls refs onto the engine and returns those it pulled: the
// classic builder reuses layers only of images the engine holds, so a
// cold engine (a new build machine, or one whose images were pruned)
// builds from the registry's copy of the branch's last build rather
// than from nothing. A ref that cannot be pulled (the branch's first
// build) is skipped, and said so in log: it only costs the cache.
func (e *Engine) pullCache(ctx context.Context, refs []string, log io.Writer) []string {
	var pulled []string
	for _, ref := range refs {
		rc, err := e.c.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: e.auth})
		if err == nil {
			// Progress is noise in a job log; only an error counts.
			err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
			rc.Close()
		}
		if err != nil {
			fmt.Fprintf(log, "no build cache from %s: %v\n", ref, err)
			continue
		}
		fmt.Fprintf(log, "build cache from %s\n", ref)
		pulled = append(pulled, ref)
	}
	return pulled
}
