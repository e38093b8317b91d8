package admission

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts reviews by door and outcome and times them.
type metrics struct {
	reviews  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_admission_reviews_total",
			Help: "Admission reviews answered, by door (validate, mutate, imagereview) and outcome (allowed, warned, denied, exempt, unchecked, patched).",
		}, []string{"door", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "customs_admission_review_duration_seconds",
			Help:    "Time to answer an admission review, by door.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"door"}),
	}
	if reg != nil {
		reg.MustRegister(m.reviews, m.duration)
	}
	return m
}

func (m *metrics) observe(door, outcome string, start time.Time) {
	m.reviews.WithLabelValues(door, outcome).Inc()
	m.duration.WithLabelValues(door).Observe(time.Since(start).Seconds())
}
