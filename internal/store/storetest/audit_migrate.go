package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

// OldAuditOpenFunc returns a new database whose schema stops at version 12,
// when the audit trail was one audit_events row per event: raw, a
// connection to it; timeArg, how its timestamp columns take a time; and
// open, a function opening a store on it (which migrates it).
type OldAuditOpenFunc func(t *testing.T) (raw *sql.DB, timeArg func(time.Time) any, open func(t *testing.T) store.Store)

// oldAuditEvents is how many events RunAuditMigration stores the old way:
// several blocks' worth, and more than the migration reads at once (4096).
const oldAuditEvents = 4500

// RunAuditMigration checks migration 0013 on trails stored the old way: an
// intact trail moves into blocks and verifies, queries and appends as
// before; a tampered one stays broken at the same event for the same
// reason, because the rows' stored hashes are kept; opening again changes
// nothing.
func RunAuditMigration(t *testing.T, open OldAuditOpenFunc) {
	t.Run("intact", func(t *testing.T) {
		t.Parallel()
		raw, timeArg, openStore := open(t)
		events := oldChain(oldAuditEvents)
		insertOld(t, raw, timeArg, events, nil)
		s := openStore(t)
		ctx := context.Background()
		rep, err := audit.VerifyStore(ctx, s)
		ok(t, err)
		if !rep.OK || rep.Events != oldAuditEvents || rep.LastID != oldAuditEvents {
			t.Fatalf("after migration: %+v (broken %+v), want %d intact events", rep, rep.Broken, oldAuditEvents)
		}
		var blocks int
		ok(t, raw.QueryRow(`SELECT count(*) FROM audit_blocks`).Scan(&blocks))
		if want := (oldAuditEvents + 255) / 256; blocks != want {
			t.Errorf("%d blocks for %d events, want %d", blocks, oldAuditEvents, want)
		}
		if _, err := raw.Exec(`SELECT 1 FROM audit_events`); err == nil {
			t.Error("audit_events still exists")
		}
		got, err := s.AuditEvents(ctx, store.AuditFilter{Actor: "user3", N: 5})
		ok(t, err)
		var want []audit.Event
		for i := len(events) - 1; i >= 0 && len(want) < 5; i-- {
			if events[i].Actor == "user3" {
				want = append(want, events[i])
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("query after migration:\n%v\nwant\n%v", got, want)
		}
		// Appends go on from the migrated head.
		more := []audit.Event{{ActorKind: audit.ActorSystem, Action: "test.after", Outcome: audit.Success}}
		ok(t, s.AppendAudit(ctx, more))
		if more[0].ID != oldAuditEvents+1 || more[0].PrevHash != events[len(events)-1].Hash {
			t.Errorf("first event after migration: id %d prevHash %s", more[0].ID, more[0].PrevHash)
		}
		// Opening again migrates nothing and keeps the trail.
		s2 := openStore(t)
		rep, err = audit.VerifyStore(ctx, s2)
		ok(t, err)
		if !rep.OK || rep.Events != oldAuditEvents+1 {
			t.Fatalf("after reopening: %+v (broken %+v)", rep, rep.Broken)
		}
	})
	for _, tc := range []struct {
		name       string
		tamper     string // SQL on the old audit_events, before migration
		wantID     int64
		wantReason string
	}{
		{"actor edited", `UPDATE audit_events SET actor = 'mallory' WHERE id = 5`, 5, "altered"},
		{"details made invalid JSON", `UPDATE audit_events SET details = 'not json' WHERE id = 7`, 7, "altered"},
		{"hash recomputed after an edit", "", 1201, "prevHash"},
		{"event deleted", `DELETE FROM audit_events WHERE id = 2000`, 2000, "missing"},
		{"event deleted at the migration's page boundary", `DELETE FROM audit_events WHERE id = 4097`, 4097, "missing"},
		{"reordered", `UPDATE audit_events SET id = -1 WHERE id = 2; UPDATE audit_events SET id = 2 WHERE id = 3; UPDATE audit_events SET id = 3 WHERE id = -1`, 2, "prevHash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, timeArg, openStore := open(t)
			events := oldChain(oldAuditEvents)
			var forge func(e *audit.Event)
			if tc.tamper == "" {
				// Event 1200 edited and rehashed: event 1201's stored
				// prev_hash no longer matches; the migration starts a block
				// there and the break stays where it was.
				forge = func(e *audit.Event) {
					if e.ID == 1200 {
						e.Actor = "mallory"
						e.Hash = audit.Hash(*e)
					}
				}
			}
			insertOld(t, raw, timeArg, events, forge)
			for _, q := range strings.Split(tc.tamper, "; ") {
				if q != "" {
					exec(t, raw, q)
				}
			}
			s := openStore(t)
			rep, err := audit.VerifyStore(context.Background(), s)
			ok(t, err)
			if rep.OK || rep.Broken == nil || rep.Broken.ID != tc.wantID || !strings.Contains(rep.Broken.Reason, tc.wantReason) {
				t.Fatalf("after migration: %+v (broken %+v), want broken at %d: %s", rep, rep.Broken, tc.wantID, tc.wantReason)
			}
		})
	}
}

// oldChain returns n chained events as the old store stored them.
func oldChain(n int) []audit.Event {
	prev := audit.GenesisHash
	out := make([]audit.Event, n)
	for i := range out {
		e := audit.Event{
			ID: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), ActorKind: audit.ActorUser,
			Actor: fmt.Sprintf("user%d", i%7), ClientIP: "192.0.2.1", UserAgent: "skopeo", Action: "artifact.pull",
			Resource: fmt.Sprintf("repository:p%d/app:v%d", i%3, i), Project: fmt.Sprintf("p%d", i%3), Outcome: audit.Success,
			PrevHash: prev,
		}
		if i%2 == 0 {
			e.Details = map[string]string{"tag": fmt.Sprint("v", i), "note": "<&>\n"}
		}
		e = audit.Normalize(e)
		e.Hash = audit.Hash(e)
		prev = e.Hash
		out[i] = e
	}
	return out
}

// insertOld inserts events into audit_events and moves audit_chain's head
// to the last, as the store before migration 0013 did. forge, if not nil,
// edits each event after it is chained (its stored hash included).
func insertOld(t *testing.T, raw *sql.DB, timeArg func(time.Time) any, events []audit.Event, forge func(e *audit.Event)) {
	t.Helper()
	tx, err := raw.Begin()
	ok(t, err)
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.Prepare(`INSERT INTO audit_events (id, occurred_at, actor_kind, actor, client_ip, user_agent, action,
		resource, project, outcome, reason, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`)
	ok(t, err)
	for _, e := range events {
		if forge != nil {
			forge(&e)
		}
		var details any
		if e.Details != nil {
			b, err := json.Marshal(e.Details)
			ok(t, err)
			details = string(b)
		}
		_, err := stmt.Exec(e.ID, timeArg(e.Time), e.ActorKind, e.Actor, e.ClientIP, e.UserAgent, e.Action,
			e.Resource, e.Project, string(e.Outcome), e.Reason, details, e.PrevHash, e.Hash)
		ok(t, err)
	}
	last := events[len(events)-1]
	_, err = tx.Exec(`UPDATE audit_chain SET last_id = $1, last_hash = $2 WHERE id = 1`, last.ID, last.Hash)
	ok(t, err)
	ok(t, tx.Commit())
}
