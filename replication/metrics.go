package replication

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus instruments, registered on the Registerer in Config.
type metrics struct {
	raftState      prometheus.Gauge
	commitLatency  prometheus.Histogram
	applyLatency   prometheus.Histogram
	applyBatchSize prometheus.Histogram
	casesAccepted  prometheus.Counter
	forwarded      prometheus.Counter
	appliedIndex   prometheus.GaugeFunc
	// handoffsApplied and handoffsRefused count arrivals this site took in or refused.
	handoffsApplied prometheus.Counter
	handoffsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, applied func() float64) *metrics {
	m := &metrics{
		raftState: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "govgrid_raft_state",
			Help: "This node's Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown.",
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govgrid_raft_commit_seconds",
			Help:    "Time from proposing a command at the leader until it is committed and applied.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govgrid_fsm_apply_batch_seconds",
			Help:    "Time the FSM takes to apply one batch of committed entries.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
		applyBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govgrid_fsm_apply_batch_entries",
			Help:    "Entries per FSM batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		casesAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_cases_accepted_total",
			Help: "Cases opened at this site (counted by the FSM on every node of the site).",
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_writes_forwarded_total",
			Help: "Writes this node forwarded to its site leader.",
		}),
		appliedIndex: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "govgrid_fsm_applied_index",
			Help: "The last Raft index applied to this node's state.",
		}, applied),
		handoffsApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_handoffs_received_total",
			Help: "Handoffs this site took in (each handoff id once, however often it was delivered).",
		}),
		handoffsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_handoffs_refused_by_target_total",
			Help: "Handoffs this site refused as their target.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.raftState, m.commitLatency, m.applyLatency, m.applyBatchSize,
			m.casesAccepted, m.forwarded, m.appliedIndex, m.handoffsApplied, m.handoffsRefused)
	}
	return m
}

func (m *metrics) observeApply(n int, d time.Duration) {
	m.applyLatency.Observe(d.Seconds())
	m.applyBatchSize.Observe(float64(n))
}
