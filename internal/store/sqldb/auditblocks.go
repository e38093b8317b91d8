package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/audit"
)

// The audit trail is stored in blocks (migration 0013): one audit_blocks
// row holds the records (package audit) of up to maxBlockEvents events with
// consecutive IDs, and audit_block_keys lists each block's distinct
// actors, projects, actions and outcomes, so that filtered queries read
// only the blocks that may match.

// Block limits: an append batch is split into blocks of at most
// maxBlockEvents events, and a block is closed once its data reaches
// maxBlockBytes (so it exceeds that by less than one record).
//
// A query reads whole blocks, so the block size trades the writer's cost
// per event against what a selective query (a rare actor) reads: with
// 1000-event blocks (~300 KB) BenchmarkAuditQuery's rare-actor cases read
// 3-4 times more than with 256 (~75 KB), while the writer's CPU per event
// grew by about 1 µs (of 7-9) from 1000 to 256 (bench/audit/results.md,
// round 6).
const (
	maxBlockEvents = 256
	maxBlockBytes  = 1 << 20
)

// Kinds of audit_block_keys rows.
const (
	keyActor   = "actor"
	keyProject = "project"
	keyAction  = "action"
	keyOutcome = "outcome"
)

// keysPerInsert is how many audit_block_keys rows one INSERT carries.
const keysPerInsert = 100

// auditBlock is one audit_blocks row: events (chained, with IDs and
// hashes) and data, their records.
type auditBlock struct {
	events []audit.Event
	data   []byte
}

// blockKey is one audit_block_keys row of a block.
type blockKey struct{ kind, value string }

// blockWriter inserts audit blocks in a transaction.
type blockWriter struct {
	tx *sql.Tx
	d  Dialect
	// ctx carries the caller's values; on SQLite it is not cancellable
	// (see appendAuditTx), and cancel is checked between statements.
	ctx, cancel context.Context
	keys        []blockKey
	seen        map[blockKey]struct{}
	args        []any
}

// newBlockWriter returns a blockWriter for tx. Without row locks (SQLite)
// the transaction holds the whole database, so a statement in it never
// waits for another writer: statements run with ctx's values but not its
// cancellation, and ctx is checked between them instead. modernc.org/sqlite
// starts a goroutine per statement to watch a cancellable context; this way
// a batch starts none, and a cancelled ctx still stops it within one
// statement (and the transaction, begun with ctx, is rolled back).
func newBlockWriter(ctx context.Context, tx *sql.Tx, d Dialect) *blockWriter {
	w := &blockWriter{tx: tx, d: d, ctx: ctx, cancel: ctx, seen: map[blockKey]struct{}{}}
	if !d.RowLocks {
		w.ctx = context.WithoutCancel(ctx)
	}
	return w
}

// splitBlocks encodes chained events (IDs, PrevHash and Hash set) into
// blocks of at most maxBlockEvents events and about maxBlockBytes, in one
// buffer. Hashes are not recomputed: events keep the Hash they carry.
func splitBlocks(events []audit.Event) []auditBlock {
	var blocks []auditBlock
	buf := make([]byte, 0, 320*len(events))
	start, first := 0, 0
	for i, e := range events {
		buf = audit.AppendRecord(buf, e)
		if i+1-first == maxBlockEvents || len(buf)-start >= maxBlockBytes || i == len(events)-1 {
			blocks = append(blocks, auditBlock{events: events[first : i+1], data: buf[start:len(buf):len(buf)]})
			start, first = len(buf), i+1
		}
	}
	return blocks
}

// insert stores b and its keys.
func (w *blockWriter) insert(b auditBlock) error {
	if err := w.cancel.Err(); err != nil {
		return err
	}
	first, last := b.events[0], b.events[len(b.events)-1]
	minT, maxT := first.Time, first.Time
	for _, e := range b.events {
		if e.Time.Before(minT) {
			minT = e.Time
		}
		if e.Time.After(maxT) {
			maxT = e.Time
		}
	}
	w.keys = appendBlockKeys(w.keys[:0], w.seen, b.events)
	if _, err := w.tx.ExecContext(w.ctx,
		`INSERT INTO audit_blocks (first_id, last_id, min_time, max_time, prev_hash, data) VALUES ($1, $2, $3, $4, $5, $6)`,
		first.ID, last.ID, w.d.TimeArg(minT.UTC()), w.d.TimeArg(maxT.UTC()), first.PrevHash, string(b.data)); err != nil {
		return err
	}
	for start := 0; start < len(w.keys); start += keysPerInsert {
		if err := w.cancel.Err(); err != nil {
			return err
		}
		chunk := w.keys[start:min(start+keysPerInsert, len(w.keys))]
		var q strings.Builder
		q.WriteString(`INSERT INTO audit_block_keys (kind, value, first_id) VALUES `)
		w.args = w.args[:0]
		for i, k := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			q.WriteString(placeholders(3*i+1, 3))
			q.WriteByte(')')
			w.args = append(w.args, k.kind, k.value, first.ID)
		}
		if _, err := w.tx.ExecContext(w.ctx, q.String(), w.args...); err != nil {
			return err
		}
	}
	return nil
}

// appendBlockKeys appends to keys the audit_block_keys rows of a block of
// events: each distinct non-empty actor, project, action and outcome
// (queries never filter on an empty value), in the order they first
// occur. seen is scratch space, cleared first.
func appendBlockKeys(keys []blockKey, seen map[blockKey]struct{}, events []audit.Event) []blockKey {
	clear(seen)
	add := func(kind, value string) {
		if value == "" {
			return
		}
		k := blockKey{kind, value}
		if _, dup := seen[k]; dup {
			return
		}
		seen[k] = struct{}{}
		keys = append(keys, k)
	}
	for i := range events {
		e := &events[i]
		add(keyActor, e.Actor)
		add(keyProject, e.Project)
		add(keyAction, e.Action)
		add(keyOutcome, string(e.Outcome))
	}
	return keys
}

// keysMismatch returns why stored, a block's audit_block_keys rows, are
// not want, the keys of its events (appendBlockKeys), or "" when they are
// the same set. It sorts both.
func keysMismatch(want, stored []blockKey) string {
	sortKeys(want)
	sortKeys(stored)
	var missing, extra []blockKey
	i, j := 0, 0
	for i < len(want) || j < len(stored) {
		switch {
		case j == len(stored) || i < len(want) && compareKeys(want[i], stored[j]) < 0:
			missing = append(missing, want[i])
			i++
		case i == len(want) || compareKeys(want[i], stored[j]) > 0:
			extra = append(extra, stored[j])
			j++
		default:
			i++
			j++
		}
	}
	var why []string
	if len(missing) > 0 {
		why = append(why, fmt.Sprintf("audit_block_keys lacks %s of its events%s (filtered queries would miss them)",
			describeKey(missing[0]), more(len(missing))))
	}
	if len(extra) > 0 {
		why = append(why, fmt.Sprintf("audit_block_keys lists %s%s, which none of its events has",
			describeKey(extra[0]), more(len(extra))))
	}
	return strings.Join(why, "; ")
}

// more is " and n-1 more" for n > 1, else "".
func more(n int) string {
	if n > 1 {
		return fmt.Sprintf(" and %d more", n-1)
	}
	return ""
}

// describeKey names a key row in messages: its kind and quoted value.
func describeKey(k blockKey) string { return fmt.Sprintf("%s %q", k.kind, k.value) }

// sortKeys sorts keys by kind, then value (bytewise).
func sortKeys(keys []blockKey) { slices.SortFunc(keys, compareKeys) }

// compareKeys orders keys by kind, then value (bytewise).
func compareKeys(a, b blockKey) int {
	if c := strings.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	return strings.Compare(a.value, b.value)
}

// deleteBlock removes the block starting at firstID and its keys.
func deleteBlock(ctx context.Context, tx *sql.Tx, firstID int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_block_keys WHERE first_id = $1`, firstID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM audit_blocks WHERE first_id = $1`, firstID)
	return err
}

// storedBlock is an audit_blocks row as read.
type storedBlock struct {
	firstID, lastID  int64
	minTime, maxTime time.Time
	prevHash, data   string
}

// blockColumns are the audit_blocks columns scanBlock reads.
const blockColumns = `first_id, last_id, min_time, max_time, prev_hash, data`

// scanBlock reads one row of blockColumns.
func scanBlock(row interface{ Scan(...any) error }) (storedBlock, error) {
	var b storedBlock
	err := row.Scan(&b.firstID, &b.lastID, timeScan{&b.minTime}, timeScan{&b.maxTime}, &b.prevHash, &b.data)
	return b, err
}

// headerMismatch returns why b's recorded IDs and times do not describe
// events (its decoded events), or "" when they do.
func (b storedBlock) headerMismatch(events []audit.Event) string {
	if len(events) == 0 {
		return fmt.Sprintf("audit_blocks records events %d-%d but the block holds none", b.firstID, b.lastID)
	}
	first, last := events[0], events[len(events)-1]
	minT, maxT := first.Time, first.Time
	for _, e := range events {
		if e.Time.Before(minT) {
			minT = e.Time
		}
		if e.Time.After(maxT) {
			maxT = e.Time
		}
	}
	switch {
	case first.ID != b.firstID || last.ID != b.lastID:
		return fmt.Sprintf("audit_blocks records events %d-%d but the block holds %d-%d", b.firstID, b.lastID, first.ID, last.ID)
	case !minT.Equal(b.minTime) || !maxT.Equal(b.maxTime):
		return fmt.Sprintf("audit_blocks records times %s to %s but the block's events span %s to %s",
			b.minTime.Format(time.RFC3339Nano), b.maxTime.Format(time.RFC3339Nano), minT.Format(time.RFC3339Nano), maxT.Format(time.RFC3339Nano))
	}
	return ""
}

// migrationStep returns the Go step to run after migration version's SQL,
// in its transaction, or nil.
func migrationStep(version int64) func(ctx context.Context, tx *sql.Tx, d Dialect) error {
	if version == 13 {
		return moveAuditEventsToBlocks
	}
	return nil
}

// moveAuditEventsToBlocks moves the rows of audit_events (the trail before
// migration 0013) into blocks and drops the table. Rows are read in ID
// order, a page at a time, and keep their stored fields and hashes exactly
// (a tampered row stays detectably tampered); a new block starts whenever
// a row's stored prev_hash is not the previous row's stored hash or its ID
// does not follow the previous row's, so the trail verifies, or breaks,
// exactly as it did. Memory holds one page and one block.
func moveAuditEventsToBlocks(ctx context.Context, tx *sql.Tx, d Dialect) error {
	w := newBlockWriter(ctx, tx, d)
	var block []audit.Event
	flush := func() error {
		for _, b := range splitBlocks(block) {
			if err := w.insert(b); err != nil {
				return fmt.Errorf("writing audit blocks: %w", err)
			}
		}
		block = block[:0]
		return nil
	}
	after := int64(-1 << 63)
	for {
		page, err := readOldAuditPage(ctx, tx, after)
		if err != nil {
			return err
		}
		for _, e := range page {
			if n := len(block); n > 0 && (e.PrevHash != block[n-1].Hash || e.ID != block[n-1].ID+1) {
				if err := flush(); err != nil {
					return err
				}
			}
			block = append(block, e)
			if len(block) == maxBlockEvents {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if len(page) < oldAuditPage {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := flush(); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DROP TABLE audit_events`)
	return err
}

// oldAuditPage is how many audit_events rows the migration reads at once.
const oldAuditPage = 4096

// readOldAuditPage reads the next oldAuditPage rows of audit_events with
// IDs above after, in ID order.
func readOldAuditPage(ctx context.Context, tx *sql.Tx, after int64) ([]audit.Event, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, occurred_at, actor_kind, actor, client_ip, user_agent, action, resource, project,
		outcome, reason, details, prev_hash, hash FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2`, after, oldAuditPage)
	if err != nil {
		return nil, fmt.Errorf("reading audit_events: %w", err)
	}
	defer rows.Close()
	var page []audit.Event
	for rows.Next() {
		e, err := scanOldAuditEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("reading audit_events: %w", err)
		}
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit_events: %w", err)
	}
	return page, nil
}

// scanOldAuditEvent reads a row of audit_events as the store before
// migration 0013 did: details is JSON; details that are not (an edited
// row) are kept as the one detail "" so that the event stays altered.
func scanOldAuditEvent(rows *sql.Rows) (audit.Event, error) {
	var e audit.Event
	var outcome string
	var details sql.NullString
	if err := rows.Scan(&e.ID, timeScan{&e.Time}, &e.ActorKind, &e.Actor, &e.ClientIP, &e.UserAgent, &e.Action,
		&e.Resource, &e.Project, &outcome, &e.Reason, &details, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	e.Outcome = audit.Outcome(outcome)
	if details.Valid {
		if err := json.Unmarshal([]byte(details.String), &e.Details); err != nil {
			e.Details = map[string]string{"": details.String}
		}
	}
	if len(e.Details) == 0 {
		e.Details = nil
	}
	return e, nil
}
