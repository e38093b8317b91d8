package main

import (
	"strings"
	"testing"
	"time"
)

func TestReadMetric(t *testing.T) {
	exp := "# HELP customs_audit_queue_length x\n# TYPE customs_audit_queue_length gauge\n" +
		"customs_audit_queue_length_other 7\ncustoms_audit_queue_length 12\n"
	if v, ok := readMetric(strings.NewReader(exp), "customs_audit_queue_length"); !ok || v != 12 {
		t.Fatalf("readMetric = %v, %v; want 12", v, ok)
	}
	if _, ok := readMetric(strings.NewReader("customs_audit_queue_length_other 7\n"), "customs_audit_queue_length"); ok {
		t.Fatal("found a metric whose name only starts with the one asked for")
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var r result
	for i := 1; i <= 100; i++ {
		r.lat = append(r.lat, time.Duration(i)*time.Millisecond)
	}
	if r.pct(0.5) != 50*time.Millisecond || r.pct(0.99) != 99*time.Millisecond || r.pct(1) != 100*time.Millisecond {
		t.Fatalf("p50 %s p99 %s p100 %s", r.pct(0.5), r.pct(0.99), r.pct(1))
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Fatalf("median = %v", m)
	}
}
