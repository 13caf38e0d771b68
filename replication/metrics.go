package replication

import (
	"time"

	"github.com/govgrid/govgrid/internal/metric"
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
	f := metric.With(reg)
	return &metrics{
		raftState:      f.Gauge("govgrid_raft_state", "This node's Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown."),
		commitLatency:  f.Histogram("govgrid_raft_commit_seconds", "Time from proposing a command at the leader until it is committed and applied.", 0.0005, 2, 14),
		applyLatency:   f.Histogram("govgrid_fsm_apply_batch_seconds", "Time the FSM takes to apply one batch of committed entries.", 0.00005, 2, 14),
		applyBatchSize: f.Histogram("govgrid_fsm_apply_batch_entries", "Entries per FSM batch.", 1, 2, 10),
		forwarded:      f.Counter("govgrid_writes_forwarded_total", "Writes this node forwarded to its site leader."),
		appliedIndex:   f.GaugeFunc("govgrid_fsm_applied_index", "The last Raft index applied to this node's state.", applied),
		refused:        f.CounterVec("govgrid_fsm_refused_commands_total", "Commands committed to the log and refused by the state machine (they changed nothing), by command.", "command"),
		panics:         f.Counter("govgrid_fsm_apply_panics_total", "Commands refused because applying them panicked: a bug, logged with its stack; the site goes on."),
	}
}

func (m *metrics) observeApply(n int, d time.Duration) {
	m.applyLatency.Observe(d.Seconds())
	m.applyBatchSize.Observe(float64(n))
}
