package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

// SharedOpenFunc opens a new, empty store like OpenFunc and also returns a
// raw connection to the same database, through which tests alter rows
// behind the store's back, and a function opening another store on the
// same database, as another replica or a CLI process would.
type SharedOpenFunc func(t testing.TB, now func() time.Time) (s store.Store, raw *sql.DB, reopen func(t testing.TB) store.Store)

// RunAuditTamper checks that audit verification finds every edit, deletion
// and reordering made directly in the database, naming the first broken
// event, and that appenders on several store handles at once still build
// one valid chain.
func RunAuditTamper(t *testing.T, open SharedOpenFunc) {
	for _, tc := range tamperCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			s, raw, _ := open(t, clk.Now)
			ctx := context.Background()
			events := tamperEvents()
			ok(t, s.AppendAudit(ctx, events))
			if tc.purge {
				by := audit.Event{ActorKind: audit.ActorSystem}
				_, err := s.PurgeAudit(ctx, t0.Add(90*time.Minute), &by) // removes 1 and 2; appends 6
				ok(t, err)
			}
			if before, err := audit.VerifyStore(ctx, s); err != nil || !before.OK {
				t.Fatalf("before tampering: %+v, %v", before, err)
			}
			tc.tamper(t, raw, events)
			rep, err := audit.VerifyStore(ctx, s)
			ok(t, err)
			if rep.OK || rep.Broken == nil {
				t.Fatalf("%s: verification passed: %+v", tc.name, rep)
			}
			if rep.Broken.ID != tc.wantID || !strings.Contains(rep.Broken.Reason, tc.wantReason) {
				t.Errorf("%s: broken at %d (%s), want event %d and a reason mentioning %q",
					tc.name, rep.Broken.ID, rep.Broken.Reason, tc.wantID, tc.wantReason)
			}
		})
	}
	t.Run("concurrent appenders on several handles", func(t *testing.T) {
		t.Parallel()
		testAuditConcurrentHandles(t, open)
	})
}

// tamperEvents are five events an hour apart.
func tamperEvents() []audit.Event {
	var out []audit.Event
	for i := range 5 {
		out = append(out, audit.Event{
			Time: t0.Add(time.Duration(i) * time.Hour), ActorKind: audit.ActorUser, Actor: fmt.Sprintf("user%d", i+1),
			Action: "artifact.push", Resource: fmt.Sprintf("repository:p/app:v%d", i+1), Project: "p",
			Outcome: audit.Denied, Details: map[string]string{"tag": fmt.Sprintf("v%d", i+1)},
		})
	}
	return out
}

// exec runs statements on raw, failing the test on error.
func exec(t *testing.T, raw *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

var tamperCases = []struct {
	name       string
	purge      bool
	tamper     func(t *testing.T, raw *sql.DB, events []audit.Event)
	wantID     int64
	wantReason string
}{
	{
		name: "actor edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_events SET actor = 'mallory' WHERE id = 3`)
		},
		wantID: 3, wantReason: "altered",
	},
	{
		name: "outcome edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_events SET outcome = 'success' WHERE id = 2`)
		},
		wantID: 2, wantReason: "altered",
	},
	{
		name: "detail edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_events SET details = '{"tag":"latest"}' WHERE id = 4`)
		},
		wantID: 4, wantReason: "altered",
	},
	{
		name: "detail made invalid JSON",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_events SET details = 'not json' WHERE id = 1`)
		},
		wantID: 1, wantReason: "altered",
	},
	{
		name: "time edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_events SET occurred_at = (SELECT occurred_at FROM audit_events WHERE id = 1) WHERE id = 5`)
		},
		wantID: 5, wantReason: "altered",
	},
	{
		name: "edited with its hash recomputed",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			forged := events[2]
			forged.Actor = "mallory"
			forged.Hash = audit.Hash(forged)
			if _, err := raw.Exec(`UPDATE audit_events SET actor = $1, hash = $2 WHERE id = 3`, forged.Actor, forged.Hash); err != nil {
				t.Fatal(err)
			}
		},
		wantID: 4, wantReason: "prevHash",
	},
	{
		name: "middle event deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `DELETE FROM audit_events WHERE id = 3`)
		},
		wantID: 3, wantReason: "missing",
	},
	{
		name: "first event deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `DELETE FROM audit_events WHERE id = 1`)
		},
		wantID: 1, wantReason: "missing",
	},
	{
		name: "newest event deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `DELETE FROM audit_events WHERE id = 5`)
		},
		wantID: 5, wantReason: "missing",
	},
	{
		name: "deleted and renumbered",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			exec(t, raw, `DELETE FROM audit_events WHERE id = 3`,
				`UPDATE audit_events SET id = 3 WHERE id = 4`,
				`UPDATE audit_events SET id = 4 WHERE id = 5`,
				`UPDATE audit_chain SET last_id = 4`)
		},
		wantID: 3, wantReason: "prevHash",
	},
	{
		name: "reordered",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_events SET id = 100 WHERE id = 2`,
				`UPDATE audit_events SET id = 2 WHERE id = 3`,
				`UPDATE audit_events SET id = 3 WHERE id = 100`)
		},
		wantID: 2, wantReason: "prevHash",
	},
	{
		name: "event inserted behind the store",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			// A well-formed link after event 5, hashed correctly: only the
			// head, which was not moved, gives it away.
			forged := events[4]
			forged.ID, forged.PrevHash = 6, events[4].Hash
			forged.Hash = audit.Hash(forged)
			if _, err := raw.Exec(`INSERT INTO audit_events (`+auditColumnsForTests+`)
				SELECT 6, occurred_at, actor_kind, actor, client_ip, user_agent, action, resource, project, outcome, reason, details, $1, $2
				FROM audit_events WHERE id = 5`, forged.PrevHash, forged.Hash); err != nil {
				t.Fatal(err)
			}
		},
		wantID: 6, wantReason: "not appended through the store",
	},
	{
		name: "oldest events deleted and the anchor moved without a purge",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			exec(t, raw, `DELETE FROM audit_events WHERE id <= 2`)
			if _, err := raw.Exec(`UPDATE audit_chain SET anchor_id = 2, anchor_hash = $1`, events[1].Hash); err != nil {
				t.Fatal(err)
			}
		},
		wantID: 2, wantReason: "no audit.purge event",
	},
	{
		name:  "events deleted after a purge",
		purge: true,
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			exec(t, raw, `DELETE FROM audit_events WHERE id = 3`)
			if _, err := raw.Exec(`UPDATE audit_chain SET anchor_id = 3, anchor_hash = $1`, events[2].Hash); err != nil {
				t.Fatal(err)
			}
		},
		wantID: 6, wantReason: "outside a purge",
	},
	{
		name:  "purge event edited",
		purge: true,
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_events SET actor = 'someone' WHERE id = 6`)
		},
		wantID: 6, wantReason: "altered",
	},
}

// auditColumnsForTests lists audit_events' columns.
const auditColumnsForTests = `id, occurred_at, actor_kind, actor, client_ip, user_agent, action, resource, project, outcome, reason, details, prev_hash, hash`

// testAuditConcurrentHandles appends from several goroutines on several
// store handles at once (replicas, or the server and a CLI) and checks the
// result is one valid chain holding every event once.
func testAuditConcurrentHandles(t *testing.T, open SharedOpenFunc) {
	const handles, writers, batches, perBatch = 3, 4, 15, 7
	s, _, reopen := open(t, time.Now)
	stores := []store.Store{s}
	for range handles - 1 {
		stores = append(stores, reopen(t))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for h, st := range stores {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					batch := make([]audit.Event, perBatch)
					for i := range batch {
						batch[i] = audit.Event{ActorKind: audit.ActorSystem, Action: "test.append", Outcome: audit.Success,
							Resource: fmt.Sprintf("h%d/w%d/b%d/e%d", h, w, b, i)}
					}
					if err := st.AppendAudit(ctx, batch); err != nil {
						t.Errorf("handle %d writer %d: %v", h, w, err)
						return
					}
					for i := 1; i < len(batch); i++ {
						if batch[i].ID != batch[i-1].ID+1 {
							t.Errorf("batch IDs not consecutive: %d then %d", batch[i-1].ID, batch[i].ID)
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	rep, err := audit.VerifyStore(ctx, s)
	ok(t, err)
	const total = handles * writers * batches * perBatch
	if !rep.OK || rep.Events != total || rep.LastID != total {
		t.Fatalf("after concurrent appends: %+v (broken %+v), want %d events, intact", rep, rep.Broken, total)
	}
	got, err := s.AuditEvents(ctx, store.AuditFilter{})
	ok(t, err)
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.Resource] {
			t.Errorf("event %s stored twice", e.Resource)
		}
		seen[e.Resource] = true
	}
	if len(seen) != total {
		t.Errorf("%d distinct events stored, want %d", len(seen), total)
	}
}
