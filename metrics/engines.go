package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmhook/swarmhook/engines"
)

var (
	engineUpDesc = prometheus.NewDesc("swarmhook_build_engine_up",
		"Whether the build engine answered its last ping (1) or not (0).", []string{"engine"}, nil)
	engineRunningDesc = prometheus.NewDesc("swarmhook_build_engine_jobs",
		"Jobs building or pushing on the build engine now.", []string{"engine"}, nil)
)

// Engines exports each build engine's state (docker.builders) as
// swarmhook_build_engine_up and swarmhook_build_engine_jobs, read from
// states at each scrape.
func (m *Metrics) Engines(states func() []engines.State) {
	m.reg.MustRegister(engineCollector(states))
}

type engineCollector func() []engines.State

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- engineUpDesc
	ch <- engineRunningDesc
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(engineUpDesc, prometheus.GaugeValue, up, s.Name)
		ch <- prometheus.MustNewConstMetric(engineRunningDesc, prometheus.GaugeValue, float64(s.Running), s.Name)
	}
}
