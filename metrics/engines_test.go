package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmhook/swarmhook/engines"
)

func TestEnginesReadAtScrape(t *testing.T) {
	m := New()
	states := []engines.State{{Name: "a", Up: true, Running: 2}, {Name: "b"}}
	m.Engines(func() []engines.State { return states })
	want := `
# HELP swarmhook_build_engine_jobs Jobs building or pushing on the build engine now.
# TYPE swarmhook_build_engine_jobs gauge
swarmhook_build_engine_jobs{engine="a"} 2
swarmhook_build_engine_jobs{engine="b"} 0
# HELP swarmhook_build_engine_up Whether the build engine answered its last ping (1) or not (0).
# TYPE swarmhook_build_engine_up gauge
swarmhook_build_engine_up{engine="a"} 1
swarmhook_build_engine_up{engine="b"} 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "swarmhook_build_engine_up", "swarmhook_build_engine_jobs"); err != nil {
		t.Error(err)
	}
	states[1].Up = true
	if !strings.Contains(scrape(t, m), `swarmhook_build_engine_up{engine="b"} 1`) {
		t.Error("b not up at the scrape after it came up")
	}
}
