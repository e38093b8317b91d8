package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// blobStatser reports how many blobs the registry stores and their total
// size.
type blobStatser interface {
	BlobStats(ctx context.Context) (count, bytes int64, err error)
}

// storageCollector exports storage usage, read from the metadata store at
// scrape time.
type storageCollector struct {
	stats blobStatser
	blobs *prometheus.Desc
	bytes *prometheus.Desc
}

func newStorageCollector(s blobStatser) *storageCollector {
	return &storageCollector{
		stats: s,
		blobs: prometheus.NewDesc("customs_storage_blobs", "Blobs stored (layers, configs, manifests).", nil, nil),
		bytes: prometheus.NewDesc("customs_storage_bytes", "Total size of stored blobs in bytes.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.blobs
	ch <- c.bytes
}

// Collect implements prometheus.Collector.
func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, b, err := c.stats.BlobStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.blobs, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.blobs, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(b))
}
