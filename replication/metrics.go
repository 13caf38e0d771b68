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
	forwarded      prometheus.Counter
	appliedIndex   prometheus.GaugeFunc
	// refused counts commands committed but refused by the state machine, by command; panics
	// counts those refused because their applier panicked (a bug: each is logged with a stack).
	refused *prometheus.CounterVec
	panics  prometheus.Counter
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
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_writes_forwarded_total",
			Help: "Writes this node forwarded to its site leader.",
		}),
		appliedIndex: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "govgrid_fsm_applied_index",
			Help: "The last Raft index applied to this node's state.",
		}, applied),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govgrid_fsm_refused_commands_total",
			Help: "Commands committed to the log and refused by the state machine (they changed nothing), by command.",
		}, []string{"command"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_fsm_apply_panics_total",
			Help: "Commands refused because applying them panicked: a bug, logged with its stack; the site goes on.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.raftState, m.commitLatency, m.applyLatency, m.applyBatchSize,
			m.forwarded, m.appliedIndex, m.refused, m.panics)
	}
	return m
}

func (m *metrics) observeApply(n int, d time.Duration) {
	m.applyLatency.Observe(d.Seconds())
	m.applyBatchSize.Observe(float64(n))
}
