package job

// QueueDepth returns how many builds wait for a worker or for the build
// of their branch that runs now. It is cheap enough for every scrape.
func (r *Runner) QueueDepth() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lanes {
		n += len(l.waiting)
	}
	return n
}
