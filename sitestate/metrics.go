package sitestate

import (
	"github.com/govgrid/govgrid/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics count the site's committed work, on every node of the site.
type metrics struct {
	casesAccepted   prometheus.Counter
	handoffsApplied prometheus.Counter
	handoffsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.With(reg)
	return &metrics{
		casesAccepted:   f.Counter("govgrid_cases_accepted_total", "Cases opened at this site (counted by the FSM on every node of the site)."),
		handoffsApplied: f.Counter("govgrid_handoffs_received_total", "Handoffs this site took in (each handoff id once, however often it was delivered)."),
		handoffsRefused: f.Counter("govgrid_handoffs_refused_by_target_total", "Handoffs this site refused as their target."),
	}
}
