package metrics

import (
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmhook/swarmhook/job"
)

// stageBuckets span a cached rebuild (a second) to a slow rolling update
// (half an hour), in seconds.
var stageBuckets = []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// Metrics holds every metric swarmhook exports.
type Metrics struct {
	reg            *prometheus.Registry
	jobs           *prometheus.CounterVec
	running        prometheus.Gauge
	stages         *prometheus.HistogramVec
	deliveries     *prometheus.CounterVec
	notifications  *prometheus.CounterVec
	registryErrors *prometheus.CounterVec
	engineErrors   *prometheus.CounterVec
	deferred       *prometheus.CounterVec
	overridden     *prometheus.CounterVec

	mu      sync.Mutex
	runIDs  map[int64]bool // jobs this process saw start and not end
	counted map[int64]bool // jobs whose end was counted, so a repeat is not
	// held are the jobs whose deferral or override was counted, by
	// verdict ("deferred", "override"), so a repeat is not.
	held map[string]map[int64]bool
}

// New returns metrics registered on a registry of their own, with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmhook_jobs_total",
			Help: "Jobs that ended, by project, action and final status (succeeded, failed, superseded, interrupted).",
		}, []string{"project", "action", "status"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "swarmhook_jobs_running",
			Help: "Jobs running now.",
		}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "swarmhook_stage_duration_seconds",
			Help:    "How long job stages took: fetch, build, push, tag, deploy, revert.",
			Buckets: stageBuckets,
		}, []string{"stage"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmhook_webhook_deliveries_total",
			Help: "Webhook deliveries received, by Git host and outcome (accepted, ignored, redelivery, refused, error).",
		}, []string{"provider", "outcome"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmhook_notifications_total",
			Help: "Outgoing notifications and commit statuses, by kind (slack, webhook, status) and outcome (delivered, failed, dropped).",
		}, []string{"kind", "outcome"}),
		registryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmhook_registry_errors_total",
			Help: "Failed registry API calls, by operation.",
		}, []string{"op"}),
		engineErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmhook_engine_errors_total",
			Help: "Failed Docker Engine calls (builds, pushes, service updates), by operation.",
		}, []string{"op"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmhook_deploys_deferred_total",
			Help: "Deploys that waited, their images pushed, for a deploy window to open or a freeze to end, by project and reason (window, freeze).",
		}, []string{"project", "reason"}),
		overridden: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmhook_deploys_overridden_total",
			Help: "Deploys a token with the override scope started outside their windows or through a freeze, by project.",
		}, []string{"project"}),
		runIDs:  map[int64]bool{},
		counted: map[int64]bool{},
		held:    map[string]map[int64]bool{"deferred": {}, "override": {}},
	}
	m.reg.MustRegister(m.jobs, m.running, m.stages, m.deliveries, m.notifications, m.registryErrors, m.engineErrors, m.deferred, m.overridden,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// QueueDepth exports depth(), read at each scrape, as the number of jobs
// waiting to run. Call it once.
func (m *Metrics) QueueDepth(depth func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "swarmhook_queue_depth",
		Help: "Jobs queued and waiting for a worker.",
	}, func() float64 { return float64(depth()) }))
}

// JobChanged counts started and ended jobs and their stage times; it is a
// job.Observer.
func (m *Metrics) JobChanged(j *job.Job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case j.Status == job.Running:
		if !m.runIDs[j.ID] {
			m.runIDs[j.ID] = true
			m.running.Inc()
		}
		if n := len(j.Decisions); n > 0 && j.Decisions[n-1].Verdict == job.Overridden && m.once("override", j.ID) {
			m.overridden.WithLabelValues(j.Project).Inc()
		}
	case j.Status == job.Waiting:
		// It holds no worker while it waits.
		if m.runIDs[j.ID] {
			delete(m.runIDs, j.ID)
			m.running.Dec()
		}
		if w := j.Wait; w != nil && w.For != job.WaitApproval && m.once("deferred", j.ID) {
			m.deferred.WithLabelValues(j.Project, string(w.For)).Inc()
		}
	case j.Status.Final():
		if m.runIDs[j.ID] {
			delete(m.runIDs, j.ID)
			m.running.Dec()
		}
		if m.counted[j.ID] {
			return
		}
		m.counted[j.ID] = true
		if len(m.counted) > 4096 { // only repeats of recent ends matter
			clear(m.counted)
			m.counted[j.ID] = true
		}
		m.jobs.WithLabelValues(j.Project, string(j.Action), string(j.Status)).Inc()
		for _, s := range j.Stages {
			if s.Finished.IsZero() {
				continue
			}
			m.stages.WithLabelValues(stageKind(s.Name)).Observe(s.Finished.Sub(s.Started).Seconds())
		}
	}
}

// once reports whether job id is counted for kind for the first time.
func (m *Metrics) once(kind string, id int64) bool {
	seen := m.held[kind]
	if seen[id] {
		return false
	}
	if len(seen) > 4096 { // only repeats of recent jobs matter
		clear(seen)
	}
	seen[id] = true
	return true
}

// stageKind drops the service from "deploy web" so that the label has a
// handful of values.
func stageKind(name string) string {
	kind, _, _ := strings.Cut(name, " ")
	return kind
}

// Delivery counts one webhook delivery.
func (m *Metrics) Delivery(provider, outcome string) {
	if provider == "" {
		provider = "unknown"
	}
	m.deliveries.WithLabelValues(provider, outcome).Inc()
}

// Notified counts one notification call; it is a notify.Recorder.
func (m *Metrics) Notified(kind, outcome string) {
	m.notifications.WithLabelValues(kind, outcome).Inc()
}

// RegistryError counts a failed registry call.
func (m *Metrics) RegistryError(op string) { m.registryErrors.WithLabelValues(op).Inc() }

// EngineError counts a failed engine call.
func (m *Metrics) EngineError(op string) { m.engineErrors.WithLabelValues(op).Inc() }
