package metric

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFactoryRegistersWhatItMakes(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := With(reg)
	f.Counter("a_total", "a").Inc()
	f.CounterVec("b_total", "b", "site").WithLabelValues("cd").Add(2)
	f.Gauge("c", "c").Set(3)
	f.GaugeVec("d", "d", "child").WithLabelValues("cd-dgdj").Set(4)
	f.GaugeFunc("e", "e", func() float64 { return 5 })
	f.Histogram("f_seconds", "f", 0.001, 2, 4).Observe(0.002)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 6 {
		t.Fatalf("gathered %d series (%v), want 6", n, err)
	}
	// Without a registry nothing is registered, and making the same names twice is fine.
	With(nil).Counter("a_total", "a").Inc()
	With(nil).Counter("a_total", "a").Inc()
}
