package testenv

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakRSS is the most resident memory the swarmhook process has used
// since it started, in bytes: the kernel's high-water mark (VmHWM), so
// it needs no sampling and cannot miss a short peak.
func (s *Swarmhook) PeakRSS() int64 {
	s.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatalf("read swarmhook's memory use: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				s.t.Fatalf("parse VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	s.t.Fatalf("no VmHWM in /proc/%d/status", s.cmd.Process.Pid)
	return 0
}
