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
// the clock stops once Close has stored everything. It reports events/s and
// the process's CPU time (user + system, the writer and the producers) per
// event, which is what the trail takes from a saturated server.
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
	cpu0, cpuOK := processCPU()
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
	cpu1, _ := processCPU()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/1e3/float64(b.N), "cpu-µs/event")
	}
	got, err := s.AuditEvents(ctx, store.AuditFilter{N: 1})
	if err != nil || len(got) != 1 || got[0].ID < int64(b.N) {
		b.Fatalf("after %d events the newest stored is %+v, %v", b.N, got, err)
	}
}

// auditQueryEvents is how many events BenchAuditQuery stores.
const auditQueryEvents = 200_000

// BenchAuditQuery measures the audit query API's filters over a trail of
// 200,000 events (50 users pulling from 20 projects, one push in seven, one
// event in 10,000 by a rare actor, one minute apart in time): one page of
// 50, newest first, per operation, and the second page for the rare actor;
// and verify, a whole audit.VerifyStore of the trail per operation.
func BenchAuditQuery(b *testing.B, open OpenFunc) {
	s := open(b, time.Now)
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]audit.Event, 0, 1000)
	for i := range auditQueryEvents {
		e := audit.Event{
			Time: start.Add(time.Duration(i) * time.Minute), ActorKind: audit.ActorUser, Actor: fmt.Sprintf("user%02d", i%50),
			ClientIP: "192.0.2.10", UserAgent: "containers/5.29.2", Action: "artifact.pull",
			Resource: fmt.Sprintf("repository:p%02d/app@sha256:%064x", i%20, i), Project: fmt.Sprintf("p%02d", i%20),
			Outcome: audit.Success, Details: map[string]string{"tag": "v1"},
		}
		if i%7 == 0 {
			e.Action = "artifact.push"
		}
		if i%10_000 == 5 {
			e.Actor = "auditor"
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			if err := s.AppendAudit(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	mid := start.Add(auditQueryEvents / 2 * time.Minute)
	cases := []struct {
		name string
		f    store.AuditFilter
		want int
	}{
		{"newest", store.AuditFilter{}, 50},
		{"actor_common", store.AuditFilter{Actor: "user07"}, 50},
		{"actor_rare", store.AuditFilter{Actor: "auditor"}, auditQueryEvents / 10_000},
		{"actor_rare_page2", store.AuditFilter{Actor: "auditor", Before: auditQueryEvents / 2}, auditQueryEvents / 20_000},
		{"project", store.AuditFilter{Project: "p03"}, 50},
		{"project_action", store.AuditFilter{Project: "p03", Action: "artifact.push"}, 50},
		{"until_midway", store.AuditFilter{Until: mid}, 50},
		{"actor_until_midway", store.AuditFilter{Actor: "user07", Until: mid}, 50},
		{"absent_actor", store.AuditFilter{Actor: "nobody"}, 0},
		{"absent_action", store.AuditFilter{Action: "audit.settings"}, 0},
		{"absent_action_of_actor", store.AuditFilter{Actor: "customs", Action: "audit.settings"}, 0},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			c.f.N = 50
			for b.Loop() {
				got, err := s.AuditEvents(ctx, c.f)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != c.want {
					b.Fatalf("%+v: %d events, want %d", c.f, len(got), c.want)
				}
			}
		})
	}
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			rep, err := audit.VerifyStore(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			if !rep.OK || rep.Events != auditQueryEvents {
				b.Fatalf("verify: %v", rep)
			}
		}
	})
}
