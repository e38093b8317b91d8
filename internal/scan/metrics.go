package scan

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/store"
)

// metrics are the scanner's Prometheus metrics.
type metrics struct {
	blobReads *prometheus.CounterVec
	jobs      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	cache     *prometheus.CounterVec
	rematched prometheus.Counter
	sboms     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, st store.ScanJobStore) *metrics {
	m := &metrics{
		blobReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_scan_blob_reads_total",
			Help: "Blobs the scanner opened from the blob store, by kind (manifest, config, layer).",
		}, []string{"kind"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_scan_jobs_total",
			Help: "Runs of scan jobs by kind and how they ended (done, failed, unsupported, retried, deferred, interrupted, lease-lost).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "customs_scan_job_duration_seconds",
			Help:    "Duration of scan job runs by kind.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"kind"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_scan_layer_cache_requests_total",
			Help: "Lookups of per-layer extraction results in the database by result (hit, miss, error).",
		}, []string{"result"}),
		rematched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "customs_scan_rematched_reports_total",
			Help: "Reports matched again from their stored inventory after a vulnerability database change.",
		}),
		sboms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_scan_sbom_referrers_total",
			Help: "SBOM referrers stored after scans (scan.pushSBOM), by result (stored, error).",
		}, []string{"result"}),
	}
	for _, k := range []string{readManifest, readConfig, readLayer} {
		m.blobReads.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.blobReads, m.jobs, m.duration, m.cache, m.rematched, m.sboms, &queueCollector{st: st,
			desc: prometheus.NewDesc("customs_scan_queue_jobs", "Scan jobs in the queue by status.", []string{"status"}, nil)})
	}
	return m
}

// queueCollector exports the queue's counts, read from the store at scrape
// time (the queue is shared by every replica).
type queueCollector struct {
	st   store.ScanJobStore
	desc *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.st.ScanQueueStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for status, n := range map[string]int{store.ScanQueued: st.Queued, store.ScanRunning: st.Running,
		store.ScanDone: st.Done, store.ScanFailed: st.Failed, store.ScanUnsupported: st.Unsupported} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), status)
	}
}
