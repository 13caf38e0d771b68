package sitestate

import "github.com/prometheus/client_golang/prometheus"

// metrics count the site's committed work, on every node of the site.
type metrics struct {
	casesAccepted   prometheus.Counter
	handoffsApplied prometheus.Counter
	handoffsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		casesAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_cases_accepted_total",
			Help: "Cases opened at this site (counted by the FSM on every node of the site).",
		}),
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
		reg.MustRegister(m.casesAccepted, m.handoffsApplied, m.handoffsRefused)
	}
	return m
}
