// Package metric declares Prometheus instruments in one line each, registered as they are made:
// a package's metrics read as a list of names and meanings.
package metric

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Factory makes instruments and registers them on its Registerer (none if it is nil).
type Factory struct{ f promauto.Factory }

// With returns a Factory that registers on reg; a nil reg registers nothing.
func With(reg prometheus.Registerer) Factory { return Factory{promauto.With(reg)} }

// Counter is a counter.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return f.f.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// CounterVec is a counter by labels.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return f.f.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// Gauge is a gauge.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return f.f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// GaugeVec is a gauge by labels.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return f.f.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// GaugeFunc is a gauge whose value value gives when scraped.
func (f Factory) GaugeFunc(name, help string, value func() float64) prometheus.GaugeFunc {
	return f.f.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value)
}

// Histogram is a histogram with exponential buckets: count of them, the first at start, each
// factor times the one before.
func (f Factory) Histogram(name, help string, start, factor float64, count int) prometheus.Histogram {
	return f.f.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: prometheus.ExponentialBuckets(start, factor, count)})
}
