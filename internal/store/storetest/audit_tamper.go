package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
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
// and reordering made directly in the database — to the blocks' data, as
// an attacker with SQL would, to their recorded IDs and times, to their
// audit_block_keys rows, and to the chain's head and anchor — naming the
// first broken event (or, for a block's IDs, times or keys, the block's
// first ID, if no event is broken), and that
// appenders on several store handles at once still build one valid chain.
//
// The trail tampered with is five events an hour apart appended in two
// batches, so stored as two blocks: events 1-3 and events 4-5. With purge,
// events 1 and 2 are purged (the first block is rewritten holding event 3)
// and the purge is event 6, a third block.
func RunAuditTamper(t *testing.T, open SharedOpenFunc) {
	for _, tc := range tamperCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			s, raw, _ := open(t, clk.Now)
			ctx := context.Background()
			events := tamperEvents()
			ok(t, s.AppendAudit(ctx, events[:3]))
			ok(t, s.AppendAudit(ctx, events[3:]))
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
			if strings.Contains(tc.wantReason, "block altered") {
				checkIndexOnly(t, s, len(events))
			}
		})
	}
	t.Run("concurrent appenders on several handles", func(t *testing.T) {
		t.Parallel()
		testAuditConcurrentHandles(t, open)
	})
}

// checkIndexOnly checks that a reader skipping audit.IndexOnly errors, as
// export does, still reads all n events and meets no other error: a
// tampered block description or key row loses no event.
func checkIndexOnly(t *testing.T, s store.Store, n int) {
	t.Helper()
	var got, skipped int
	err := s.ScanAudit(context.Background(), func(_ audit.Chain, events iter.Seq2[audit.Event, error]) error {
		for _, err := range events {
			if audit.IndexOnly(err) {
				skipped++
				continue
			}
			if err != nil {
				return err
			}
			got++
		}
		return nil
	})
	ok(t, err)
	if got != n || skipped == 0 {
		t.Errorf("skipping index mismatches: %d events and %d mismatches read, want %d events and some mismatch", got, skipped, n)
	}
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

// storedBlock is an audit_blocks row as a tamperer reads and writes it.
type storedBlock struct {
	firstID, lastID int64
	prevHash, data  string
}

// readBlock reads the block starting at firstID.
func readBlock(t *testing.T, raw *sql.DB, firstID int64) storedBlock {
	t.Helper()
	b := storedBlock{firstID: firstID}
	if err := raw.QueryRow(`SELECT last_id, prev_hash, data FROM audit_blocks WHERE first_id = $1`, firstID).
		Scan(&b.lastID, &b.prevHash, &b.data); err != nil {
		t.Fatalf("reading block %d: %v", firstID, err)
	}
	return b
}

// writeBlock replaces the block that started at oldFirst with b (first_id
// may change, as an attacker renumbering would make it).
func writeBlock(t *testing.T, raw *sql.DB, oldFirst int64, b storedBlock) {
	t.Helper()
	if _, err := raw.Exec(`UPDATE audit_blocks SET first_id = $1, last_id = $2, prev_hash = $3, data = $4 WHERE first_id = $5`,
		b.firstID, b.lastID, b.prevHash, b.data, oldFirst); err != nil {
		t.Fatalf("writing block %d: %v", oldFirst, err)
	}
}

// record returns the byte range of event id's record in b's data.
func (b storedBlock) record(t *testing.T, id int64) (start, end int) {
	t.Helper()
	heads, offs, err := audit.AppendDecodedLazy(nil, nil, b.data, b.prevHash)
	if err != nil {
		t.Fatalf("block %d: %v", b.firstID, err)
	}
	for i, e := range heads {
		if e.ID == id {
			end = len(b.data)
			if i+1 < len(offs) {
				end = offs[i+1]
			}
			return offs[i], end
		}
	}
	t.Fatalf("block %d holds no event %d", b.firstID, id)
	return 0, 0
}

// editRecord applies edit to the text of event id's record in b.
func (b *storedBlock) editRecord(t *testing.T, id int64, edit func(rec string) string) {
	t.Helper()
	start, end := b.record(t, id)
	b.data = b.data[:start] + edit(b.data[start:end]) + b.data[end:]
}

// removeRecord cuts event id's record out of b and returns it.
func (b *storedBlock) removeRecord(t *testing.T, id int64) string {
	t.Helper()
	start, end := b.record(t, id)
	rec := b.data[start:end]
	b.data = b.data[:start] + b.data[end:]
	return rec
}

// renumber makes a record from event from's record give it ID to.
func renumber(t *testing.T, rec string, from, to int64) string {
	t.Helper()
	old := fmt.Sprintf("16:customs.audit.v1%d:%d", len(fmt.Sprint(from)), from)
	if !strings.HasPrefix(rec, old) {
		t.Fatalf("record %q does not start with %q", rec, old)
	}
	return fmt.Sprintf("16:customs.audit.v1%d:%d", len(fmt.Sprint(to)), to) + rec[len(old):]
}

// replaceOnce replaces old by new in s, which must hold old.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found in %q", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

// micros is how a record writes time tm.
func micros(tm time.Time) string {
	n := fmt.Sprint(tm.UnixMicro())
	return fmt.Sprintf("%d:%s", len(n), n)
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
			// Same length: the block still decodes.
			exec(t, raw, `UPDATE audit_blocks SET data = replace(data, '5:user3', '5:eve03') WHERE first_id = 1`)
		},
		wantID: 3, wantReason: "altered",
	},
	{
		name: "outcome edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			b := readBlock(t, raw, 1)
			b.editRecord(t, 2, func(rec string) string { return replaceOnce(t, rec, "6:denied", "7:success") })
			writeBlock(t, raw, 1, b)
		},
		wantID: 2, wantReason: "altered",
	},
	{
		name: "detail edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_blocks SET data = replace(data, '3:tag2:v4', '3:tag6:latest') WHERE first_id = 4`)
		},
		wantID: 4, wantReason: "altered",
	},
	{
		name: "length prefix corrupted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_blocks SET data = replace(data, '5:user1', 'X:user1') WHERE first_id = 1`)
		},
		wantID: 1, wantReason: "unreadable: ",
	},
	{
		name: "length prefix past the end in a later block",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_blocks SET data = replace(data, '5:user5', '99999999:user5') WHERE first_id = 4`)
		},
		wantID: 4, wantReason: "runs past the end",
	},
	{
		name: "time edited",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			exec(t, raw, `UPDATE audit_blocks SET data = replace(data, '`+micros(events[4].Time)+`', '`+micros(events[0].Time)+`') WHERE first_id = 4`)
		},
		wantID: 5, wantReason: "altered",
	},
	{
		name: "edited with its hash recomputed, at the end of a block",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			forged := events[2]
			forged.Actor = "mallory"
			forged.Hash = audit.Hash(forged)
			b := readBlock(t, raw, 1)
			b.editRecord(t, 3, func(string) string { return string(audit.AppendRecord(nil, forged)) })
			writeBlock(t, raw, 1, b)
		},
		wantID: 4, wantReason: "prevHash",
	},
	{
		name: "edited with its hash recomputed, inside a block",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			// The next event's PrevHash is the forged record's hash, so it
			// is the next event that no longer hashes as stored.
			forged := events[1]
			forged.Actor = "mallory"
			forged.Hash = audit.Hash(forged)
			b := readBlock(t, raw, 1)
			b.editRecord(t, 2, func(string) string { return string(audit.AppendRecord(nil, forged)) })
			writeBlock(t, raw, 1, b)
		},
		wantID: 3, wantReason: "altered",
	},
	{
		name: "middle event deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			b := readBlock(t, raw, 1)
			b.removeRecord(t, 2)
			writeBlock(t, raw, 1, b)
		},
		wantID: 2, wantReason: "missing",
	},
	{
		name: "last event of a block deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			b := readBlock(t, raw, 1)
			b.removeRecord(t, 3)
			b.lastID = 2
			writeBlock(t, raw, 1, b)
		},
		wantID: 3, wantReason: "missing",
	},
	{
		name: "first event deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			b := readBlock(t, raw, 1)
			b.removeRecord(t, 1)
			b.firstID = 2
			writeBlock(t, raw, 1, b)
		},
		wantID: 1, wantReason: "missing",
	},
	{
		name: "newest event deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			b := readBlock(t, raw, 4)
			b.removeRecord(t, 5)
			b.lastID = 4
			writeBlock(t, raw, 4, b)
		},
		wantID: 5, wantReason: "missing",
	},
	{
		name: "whole block deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `DELETE FROM audit_blocks WHERE first_id = 4`)
		},
		wantID: 4, wantReason: "missing",
	},
	{
		name: "deleted and renumbered",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			b1 := readBlock(t, raw, 1)
			b1.removeRecord(t, 3)
			b1.lastID = 2
			writeBlock(t, raw, 1, b1)
			b := readBlock(t, raw, 4)
			b.editRecord(t, 4, func(rec string) string { return renumber(t, rec, 4, 3) })
			b.editRecord(t, 5, func(rec string) string { return renumber(t, rec, 5, 4) })
			b.firstID, b.lastID = 3, 4
			writeBlock(t, raw, 4, b)
			exec(t, raw, `UPDATE audit_chain SET last_id = 4`)
		},
		wantID: 3, wantReason: "prevHash",
	},
	{
		name: "reordered",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			// Records 2 and 3 swapped and renumbered: IDs still run 1, 2,
			// 3, but inside a block each event's PrevHash is the hash of
			// the record before it, so the moved event no longer hashes as
			// stored.
			b := readBlock(t, raw, 1)
			two, three := b.record(t, 2)
			_, end := b.record(t, 3)
			r2, r3 := b.data[two:three], b.data[three:end]
			b.data = b.data[:two] + renumber(t, r3, 3, 2) + renumber(t, r2, 2, 3) + b.data[end:]
			writeBlock(t, raw, 1, b)
		},
		wantID: 2, wantReason: "altered",
	},
	{
		name: "event inserted behind the store",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			// A well-formed link after event 5, hashed correctly: only the
			// head, which was not moved, gives it away.
			forged := audit.Normalize(events[4])
			forged.ID, forged.PrevHash = 6, events[4].Hash
			forged.Hash = audit.Hash(forged)
			if _, err := raw.Exec(`INSERT INTO audit_blocks (first_id, last_id, min_time, max_time, prev_hash, data)
				SELECT 6, 6, min_time, max_time, $1, $2 FROM audit_blocks WHERE first_id = 4`,
				forged.PrevHash, string(audit.AppendRecord(nil, forged))); err != nil {
				t.Fatal(err)
			}
		},
		wantID: 6, wantReason: "not appended through the store",
	},
	{
		name: "head moved back",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			if _, err := raw.Exec(`UPDATE audit_chain SET last_id = 4, last_hash = $1`, events[3].Hash); err != nil {
				t.Fatal(err)
			}
		},
		wantID: 5, wantReason: "not appended through the store",
	},
	{
		name: "block's recorded times edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			// Queries filtering on time would skip the block.
			exec(t, raw, `UPDATE audit_blocks SET min_time = max_time WHERE first_id = 1`)
		},
		wantID: 1, wantReason: "block altered",
	},
	{
		name: "key row deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			// `audit query --actor user2` would no longer find event 2.
			exec(t, raw, `DELETE FROM audit_block_keys WHERE kind = 'actor' AND value = 'user2' AND first_id = 1`)
		},
		wantID: 1, wantReason: `block altered: audit_block_keys lacks actor "user2"`,
	},
	{
		name: "key row's value changed",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `UPDATE audit_block_keys SET value = 'q' WHERE kind = 'project' AND value = 'p' AND first_id = 4`)
		},
		wantID: 4, wantReason: `lacks project "p" of its events (filtered queries would miss them); audit_block_keys lists project "q"`,
	},
	{
		name: "key row added for a block",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `INSERT INTO audit_block_keys (kind, value, first_id) VALUES ('actor', 'mallory', 4)`)
		},
		wantID: 4, wantReason: `block altered: audit_block_keys lists actor "mallory", which none of its events has`,
	},
	{
		name: "key row for no block, between blocks",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `INSERT INTO audit_block_keys (kind, value, first_id) VALUES ('actor', 'mallory', 2)`)
		},
		wantID: 2, wantReason: "no such block",
	},
	{
		name: "key row for no block, after the last",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `INSERT INTO audit_block_keys (kind, value, first_id) VALUES ('outcome', 'success', 9)`)
		},
		wantID: 9, wantReason: `audit_block_keys has 1 rows (outcome "success") for a block of events from 9, but there is no such block`,
	},
	{
		name: "key rows of a block deleted and an event of an earlier block edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			// The edited event is named, not the block whose keys are gone.
			exec(t, raw, `DELETE FROM audit_block_keys WHERE first_id = 4`,
				`UPDATE audit_blocks SET data = replace(data, '5:user3', '5:eve03') WHERE first_id = 1`)
		},
		wantID: 3, wantReason: "altered",
	},
	{
		name: "key row deleted and an event of a later block edited",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			exec(t, raw, `DELETE FROM audit_block_keys WHERE kind = 'actor' AND value = 'user1'`,
				`UPDATE audit_blocks SET data = replace(data, '5:user5', '5:eve05') WHERE first_id = 4`)
		},
		wantID: 5, wantReason: "altered",
	},
	{
		name: "key row for no block and an event deleted",
		tamper: func(t *testing.T, raw *sql.DB, _ []audit.Event) {
			b := readBlock(t, raw, 4)
			b.removeRecord(t, 5)
			b.lastID = 4
			writeBlock(t, raw, 4, b)
			exec(t, raw, `INSERT INTO audit_block_keys (kind, value, first_id) VALUES ('actor', 'mallory', 2)`)
		},
		wantID: 5, wantReason: "missing",
	},
	{
		name: "oldest events deleted and the anchor moved without a purge",
		tamper: func(t *testing.T, raw *sql.DB, events []audit.Event) {
			b := readBlock(t, raw, 1)
			b.removeRecord(t, 1)
			b.removeRecord(t, 2)
			b.firstID, b.prevHash = 3, events[1].Hash
			writeBlock(t, raw, 1, b)
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
			exec(t, raw, `DELETE FROM audit_blocks WHERE first_id = 3`)
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
			exec(t, raw, `UPDATE audit_blocks SET data = replace(data, '6:system0:', '6:system7:someone') WHERE first_id = 6`)
		},
		wantID: 6, wantReason: "altered",
	},
}

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
