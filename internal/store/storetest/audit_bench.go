package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

// BenchAuditAppend measures the audit trail's sustained write rate through
// audit.Writer, as the server records: producers on every P call Record, and
// the clock stops once Close has stored everything. It reports events/s.
func BenchAuditAppend(b *testing.B, open OpenFunc) {
	s := open(b, time.Now)
	ctx := context.Background()
	w := audit.NewWriter(audit.WriterOptions{Store: s})
	e := audit.Event{
		ActorKind: audit.ActorUser, Actor: "developer", ClientIP: "192.0.2.10",
		UserAgent: "containers/5.29.2 (github.com/containers/image)", Action: "artifact.pull",
		Resource: "repository:library/debian@sha256:" + fmt.Sprintf("%064x", 42), Project: "library",
		Outcome: audit.Success, Details: map[string]string{"tag": "bookworm"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Record(ctx, e)
		}
	})
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	got, err := s.AuditEvents(ctx, store.AuditFilter{N: 1})
	if err != nil || len(got) != 1 || got[0].ID < int64(b.N) {
		b.Fatalf("after %d events the newest stored is %+v, %v", b.N, got, err)
	}
}
