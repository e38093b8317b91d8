package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

// The audit trail is kept in blocks (see auditblocks.go) and the one row of
// audit_chain (head and anchor). Appends lock that row (PostgreSQL: FOR
// UPDATE; SQLite: the write transaction holds the database), so concurrent
// appenders, in one process or many, take turns: each assigns IDs from the
// head, chains hashes from the head's hash and moves the head before
// committing.

// AppendAudit normalizes events, stamps those without a Time with the
// store's clock, and appends them in order in one transaction, setting each
// one's ID, PrevHash and Hash. EINVALID, and nothing stored, if one fails
// audit.Validate.
func (db *DB) AppendAudit(ctx context.Context, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	batch, err := db.prepareAudit(events)
	if err != nil {
		return err
	}
	if err := db.inTx(ctx, true, func(tx *sql.Tx) error { return db.appendAuditTx(ctx, tx, batch) }); err != nil {
		return err
	}
	copy(events, batch)
	return nil
}

// prepareAudit returns normalized, time-stamped copies of events, or
// EINVALID naming the first invalid one.
func (db *DB) prepareAudit(events []audit.Event) ([]audit.Event, error) {
	now := db.nowUTC()
	batch := make([]audit.Event, len(events))
	for i, e := range events {
		if !audit.IsNormal(e) {
			// Events from audit.Writer are normal already; others are
			// normalized here (a copy: the caller's Details map is kept).
			e = audit.Normalize(e)
		}
		if e.Time.IsZero() {
			e.Time = now
		}
		if err := audit.Validate(e); err != nil {
			return nil, apperr.Errorf(apperr.EINVALID, "%v", err)
		}
		batch[i] = e
	}
	return batch, nil
}

// appendAuditTx chains batch onto the head and stores it in tx, in blocks
// of at most maxBlockEvents events. It sets the events' IDs and hashes; on
// a retry it runs again and recomputes them.
func (db *DB) appendAuditTx(ctx context.Context, tx *sql.Tx, batch []audit.Event) error {
	var head audit.Link
	if err := tx.QueryRowContext(ctx,
		`SELECT last_id, last_hash FROM audit_chain WHERE id = 1`+db.d.lock("FOR UPDATE")).
		Scan(&head.ID, &head.Hash); err != nil {
		return err
	}
	var enc audit.RecordEncoder
	buf := make([]byte, 0, 320*min(len(batch), maxBlockEvents))
	w := newBlockWriter(ctx, tx, db.d)
	first := 0
	for i := range batch {
		e := &batch[i]
		e.ID, e.PrevHash = head.ID+1, head.Hash
		buf = enc.Append(buf, e)
		head = audit.Link{ID: e.ID, Hash: e.Hash}
		if i+1-first == maxBlockEvents || len(buf) >= maxBlockBytes || i == len(batch)-1 {
			if err := w.insert(auditBlock{events: batch[first : i+1], data: buf}); err != nil {
				return err
			}
			buf, first = buf[:0], i+1
		}
	}
	_, err := tx.ExecContext(w.ctx, `UPDATE audit_chain SET last_id = $1, last_hash = $2 WHERE id = 1`, head.ID, head.Hash)
	return err
}

// AuditEvents returns the events matching f, newest first. It reads the
// candidate blocks newest first (those audit_block_keys and the blocks'
// ID and time bounds do not rule out), in pages of growing size, walks
// each block's events newest first, applies every filter to each event,
// and stops at f.N events.
func (db *DB) AuditEvents(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	n, err := limit(f.N)
	if err != nil {
		return nil, err
	}
	if f.Before < 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "event id %d is negative", f.Before)
	}
	m := newAuditMatcher(f)
	out := []audit.Event{}
	var sc blockScanner
	before := f.Before
	for page := 1; ; page = min(2*page, maxBlocksPerPage) {
		q, args := db.candidateBlocks(f, m, before, page)
		blocks, err := db.readBlocks(ctx, q, args)
		if err != nil {
			return nil, err
		}
		for _, b := range blocks {
			if out, err = sc.scan(out, b, &m, n); err != nil {
				return nil, err
			}
			if int64(len(out)) >= n {
				return out, nil
			}
		}
		if len(blocks) < page {
			return out, nil
		}
		before = blocks[len(blocks)-1].firstID
	}
}

// maxBlocksPerPage caps how many blocks one query of AuditEvents reads: the
// first reads one, and each next twice as many up to this. (A query
// without LIMIT would have PostgreSQL send every candidate block, however
// few are read.)
const maxBlocksPerPage = 16

// queriedBlock is a candidate block as AuditEvents reads it.
type queriedBlock struct {
	firstID        int64
	prevHash, data string
}

// readBlocks runs a candidateBlocks query.
func (db *DB) readBlocks(ctx context.Context, q string, args []any) ([]queriedBlock, error) {
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var blocks []queriedBlock
	for rows.Next() {
		var b queriedBlock
		if err := rows.Scan(&b.firstID, &b.prevHash, &b.data); err != nil {
			return nil, db.wrap(err)
		}
		blocks = append(blocks, b)
	}
	return blocks, db.wrap(rows.Err())
}

// blockScanner finds a filter's events in blocks, reusing its buffers.
type blockScanner struct {
	spans []audit.RecordSpan
	hits  []int
}

// scan appends to out, newest first, b's events that m matches, until out
// holds n events. It finds the records by their spans; when the filter
// names a value every match must contain (m.needle), only the records
// holding it are decoded, and then first without their details.
func (sc *blockScanner) scan(out []audit.Event, b queriedBlock, m *auditMatcher, n int64) ([]audit.Event, error) {
	unreadable := func(err error) error {
		return apperr.Errorf(apperr.EINTERNAL,
			"the stored audit block of events from %d is unreadable (%v): run `customs audit verify`", b.firstID, err)
	}
	var err error
	if sc.spans, err = audit.AppendRecordSpans(sc.spans[:0], b.data); err != nil {
		return out, unreadable(err)
	}
	sc.hits = sc.hits[:0]
	if m.needle != "" {
		for off := 0; ; {
			i := strings.Index(b.data[off:], m.needle)
			if i < 0 {
				break
			}
			sc.hits = append(sc.hits, off+i)
			off += i + 1
		}
		if len(sc.hits) == 0 {
			return out, nil
		}
	}
	h := len(sc.hits) - 1
	for i := len(sc.spans) - 1; i >= 0 && int64(len(out)) < n; i-- {
		sp := sc.spans[i]
		if m.needle != "" {
			for h >= 0 && sc.hits[h] >= sp.End {
				h--
			}
			if h < 0 {
				break
			}
			if sc.hits[h] < sp.Start {
				continue
			}
		}
		prev := b.prevHash
		if i > 0 {
			prev = sc.spans[i-1].Hash
		}
		e, err := audit.DecodeRecordAt(b.data, sp.Start, prev, false)
		if err != nil {
			return out, unreadable(err)
		}
		if !m.match(&e) {
			continue
		}
		if e, err = audit.DecodeRecordAt(b.data, sp.Start, prev, true); err != nil {
			return out, unreadable(err)
		}
		out = append(out, e)
	}
	return out, nil
}

// candidateBlocks returns the query of the next page of at most limit
// blocks, newest first, before the one starting at before (if not 0), that
// may hold events matching f: a narrowing only, m decides.
func (db *DB) candidateBlocks(f store.AuditFilter, m auditMatcher, before int64, limit int) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if before > 0 {
		where = append(where, `first_id < `+arg(before))
	}
	if m.hasSince {
		where = append(where, `max_time >= `+arg(db.d.TimeArg(m.since)))
	}
	if m.hasUntil {
		where = append(where, `min_time < `+arg(db.d.TimeArg(m.until)))
	}
	key := func(kind, cond string) {
		where = append(where, `first_id IN (SELECT first_id FROM audit_block_keys WHERE kind = '`+kind+`' AND `+cond+`)`)
	}
	if f.Actor != "" {
		key(keyActor, `value = `+arg(f.Actor))
	}
	if f.Project != "" {
		key(keyProject, `value = `+arg(f.Project))
	}
	if f.Action != "" {
		// The action or any dotted extension of it: values from "A." up to
		// "A/" ('/' follows '.'), in byte order.
		key(keyAction, `(value = `+arg(f.Action)+` OR (value >= `+arg(f.Action+".")+` AND value < `+arg(f.Action+"/")+`))`)
	}
	if f.Outcome != "" {
		key(keyOutcome, `value = `+arg(string(f.Outcome)))
	}
	// The page's first_ids are chosen without reading data, so that no
	// sort holds the blocks' data (SQLite's would, reading every
	// candidate's), and only the page's blocks are read.
	ids := `SELECT first_id FROM audit_blocks`
	if len(where) > 0 {
		ids += ` WHERE ` + strings.Join(where, ` AND `)
	}
	ids += ` ORDER BY first_id DESC LIMIT ` + arg(limit)
	return `SELECT first_id, prev_hash, data FROM audit_blocks WHERE first_id IN (` + ids + `) ORDER BY first_id DESC`, args
}

// auditMatcher applies a store.AuditFilter to one event.
type auditMatcher struct {
	f                  store.AuditFilter
	since, until       time.Time // UTC, microseconds, as stored
	hasSince, hasUntil bool
	actionPrefix       string
	// needle, if not "", is text that the record of every matching event
	// contains: the encoded actor or project field, or the resource or
	// action looked for.
	needle string
}

func newAuditMatcher(f store.AuditFilter) auditMatcher {
	m := auditMatcher{f: f, hasSince: !f.Since.IsZero(), hasUntil: !f.Until.IsZero(), actionPrefix: f.Action + "."}
	switch {
	case f.Actor != "":
		m.needle = strconv.Itoa(len(f.Actor)) + ":" + f.Actor
	case f.Project != "":
		m.needle = strconv.Itoa(len(f.Project)) + ":" + f.Project
	case f.Resource != "":
		m.needle = f.Resource
	case f.Action != "":
		m.needle = f.Action
	}
	m.since = f.Since.UTC().Truncate(time.Microsecond)
	m.until = f.Until.UTC().Truncate(time.Microsecond)
	return m
}

// match reports whether e passes every filter.
func (m *auditMatcher) match(e *audit.Event) bool {
	f := &m.f
	switch {
	case f.Before > 0 && e.ID >= f.Before,
		m.hasSince && e.Time.Before(m.since),
		m.hasUntil && !e.Time.Before(m.until),
		f.Actor != "" && e.Actor != f.Actor,
		f.Project != "" && e.Project != f.Project,
		f.Action != "" && e.Action != f.Action && !strings.HasPrefix(e.Action, m.actionPrefix),
		f.Outcome != "" && e.Outcome != f.Outcome,
		f.Resource != "" && !strings.Contains(e.Resource, f.Resource):
		return false
	}
	return true
}

// ScanAudit calls fn with the chain's anchor and head and every stored
// event in ID order, read from one snapshot (a read-only transaction:
// REPEATABLE READ in PostgreSQL, a WAL snapshot in SQLite). A block that
// does not decode is an *audit.BlockError naming its first ID, after the
// events before it, and ends the sequence. A block whose recorded IDs or
// times do not match its events, or whose audit_block_keys rows are not
// exactly the keys of its events (a row missing, changed or added), is one
// with Index set, after its events, and the sequence goes on; so are
// audit_block_keys rows naming a first ID no block has, in ID order among
// the blocks.
func (db *DB) ScanAudit(ctx context.Context, fn func(c audit.Chain, events iter.Seq2[audit.Event, error]) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return db.wrap(err)
	}
	defer func() { _ = tx.Rollback() }()
	var c audit.Chain
	if err := tx.QueryRowContext(ctx, `SELECT last_id, last_hash, anchor_id, anchor_hash FROM audit_chain WHERE id = 1`).
		Scan(&c.Head.ID, &c.Head.Hash, &c.Anchor.ID, &c.Anchor.Hash); err != nil {
		return db.wrap(err)
	}
	events := func(yield func(audit.Event, error) bool) {
		rows, err := tx.QueryContext(ctx, trailQuery)
		if err != nil {
			yield(audit.Event{}, db.wrap(err))
			return
		}
		defer rows.Close()
		var g trailGroup
		g.seen = map[blockKey]struct{}{}
		for rows.Next() {
			r, err := scanTrailRow(rows)
			if err != nil {
				yield(audit.Event{}, db.wrap(err))
				return
			}
			if g.started && r.firstID != g.firstID {
				if !g.emit(yield) {
					return
				}
				g.reset()
			}
			g.add(r)
		}
		if err := rows.Err(); err != nil {
			yield(audit.Event{}, db.wrap(err))
			return
		}
		if g.started {
			g.emit(yield)
		}
	}
	return fn(c, events)
}

// trailQuery reads every block and every audit_block_keys row in one
// query, ordered by first ID, so that each block arrives beside its key
// rows (in no particular order among them). A block row has is_key 0 and
// blockColumns; a key row has is_key 1, its kind and value in the columns
// of prev_hash and data, and NULLs for the others. (One query, not two
// read side by side: pgx runs one statement at a time on a connection, and
// the snapshot is the transaction's.) The blocks arrive in their primary
// key's order; the key rows, which no index orders by first_id, are
// sorted, and the two are merged.
const trailQuery = `SELECT first_id, 0 AS is_key, last_id, min_time, max_time, prev_hash, data FROM audit_blocks
	UNION ALL
	SELECT first_id, 1, NULL, NULL, NULL, kind, value FROM audit_block_keys
	ORDER BY first_id`

// trailRow is one row of trailQuery: a block or a key row.
type trailRow struct {
	firstID int64
	isKey   bool
	block   storedBlock
	key     blockKey
}

// scanTrailRow reads one row of trailQuery.
func scanTrailRow(rows *sql.Rows) (trailRow, error) {
	var r trailRow
	var isKey int64
	var lastID sql.NullInt64
	var minT, maxT time.Time
	var a, b string
	if err := rows.Scan(&r.firstID, &isKey, &lastID, nullTimeScan{&minT}, nullTimeScan{&maxT}, &a, &b); err != nil {
		return r, err
	}
	r.isKey = isKey != 0
	if r.isKey {
		r.key = blockKey{kind: a, value: b}
		return r, nil
	}
	r.block = storedBlock{firstID: r.firstID, lastID: lastID.Int64, minTime: minT, maxTime: maxT, prevHash: a, data: b}
	return r, nil
}

// trailGroup gathers the rows of trailQuery with one first ID: at most one
// block and its key rows. Its buffers are reused from group to group.
type trailGroup struct {
	started  bool
	firstID  int64
	hasBlock bool
	block    storedBlock
	keys     []blockKey
	// Scratch space for emit.
	events []audit.Event
	want   []blockKey
	seen   map[blockKey]struct{}
}

// add adds a row of the group's first ID (or starts the group with it).
func (g *trailGroup) add(r trailRow) {
	g.started, g.firstID = true, r.firstID
	if r.isKey {
		g.keys = append(g.keys, r.key)
		return
	}
	g.hasBlock, g.block = true, r.block
}

// reset empties g for the next first ID.
func (g *trailGroup) reset() {
	g.started, g.hasBlock, g.block, g.keys = false, false, storedBlock{}, g.keys[:0]
}

// emit yields the group's events and what is wrong with its block (see
// ScanAudit). It returns false when the sequence ends: yield asked to
// stop, or the block does not decode.
func (g *trailGroup) emit(yield func(audit.Event, error) bool) bool {
	if !g.hasBlock {
		return yield(audit.Event{}, &audit.BlockError{ID: g.firstID, Index: true, Reason: fmt.Sprintf(
			"block altered: audit_block_keys has %d rows (%s) for a block of events from %d, but there is no such block",
			len(g.keys), describeKey(g.keys[0]), g.firstID)})
	}
	b := &g.block
	var err error
	if g.events, err = audit.AppendDecoded(g.events[:0], b.data, b.prevHash); err != nil {
		yield(audit.Event{}, &audit.BlockError{ID: b.firstID, Reason: "unreadable: " + err.Error()})
		return false
	}
	for _, e := range g.events {
		if !yield(e, nil) {
			return false
		}
	}
	why := b.headerMismatch(g.events)
	if why == "" {
		g.want = appendBlockKeys(g.want[:0], g.seen, g.events)
		why = keysMismatch(g.want, g.keys)
	}
	if why != "" {
		return yield(audit.Event{}, &audit.BlockError{ID: b.firstID, Reason: "block altered: " + why, Index: true})
	}
	return true
}

// PurgeAudit removes the longest run of oldest events all older than
// before, anchors the chain at the last one removed and records the purge
// as by, in one transaction. It returns how many events were removed.
// Blocks wholly in the run are deleted; the block the run ends in is
// rewritten with the events it keeps (its prev_hash becomes the anchor's
// hash).
func (db *DB) PurgeAudit(ctx context.Context, before time.Time, by *audit.Event) (int64, error) {
	ev := *by
	ev.Action, ev.Resource, ev.Project, ev.Outcome, ev.Reason = audit.PurgeAction, "audit", "", audit.Success, ""
	ev.Details = nil
	prepared, err := db.prepareAudit([]audit.Event{ev})
	if err != nil {
		return 0, err
	}
	cutoff := before.UTC().Truncate(time.Microsecond)
	var deleted int64
	var stored audit.Event
	err = db.inTx(ctx, true, func(tx *sql.Tx) error {
		var c audit.Chain
		if err := tx.QueryRowContext(ctx,
			`SELECT last_id, last_hash, anchor_id, anchor_hash FROM audit_chain WHERE id = 1`+db.d.lock("FOR UPDATE")).
			Scan(&c.Head.ID, &c.Head.Hash, &c.Anchor.ID, &c.Anchor.Hash); err != nil {
			return err
		}
		anchor, n, err := db.purgeBlocks(ctx, tx, c, cutoff)
		if err != nil {
			return err
		}
		deleted = n
		if anchor != c.Anchor {
			if _, err := tx.ExecContext(ctx, `UPDATE audit_chain SET anchor_id = $1, anchor_hash = $2 WHERE id = 1`,
				anchor.ID, anchor.Hash); err != nil {
				return err
			}
		}
		e := prepared[0]
		e.Details = map[string]string{
			audit.DetailBefore:     cutoff.Format(time.RFC3339Nano),
			audit.DetailDeleted:    strconv.FormatInt(deleted, 10),
			audit.DetailAnchorID:   strconv.FormatInt(anchor.ID, 10),
			audit.DetailAnchorHash: anchor.Hash,
		}
		batch := []audit.Event{e}
		if err := db.appendAuditTx(ctx, tx, batch); err != nil {
			return err
		}
		stored = batch[0]
		return nil
	})
	if err != nil {
		return 0, err
	}
	*by = stored
	return deleted, nil
}

// purgeBlocks removes, in tx, the events before the first one (in ID
// order) whose Time is not before cutoff — all of them if there is none —
// and returns the new anchor (the last event removed, or c.Anchor if none
// was) and how many events were removed.
func (db *DB) purgeBlocks(ctx context.Context, tx *sql.Tx, c audit.Chain, cutoff time.Time) (audit.Link, int64, error) {
	// The first block holding an event at or after the cutoff, and in it
	// the first such event.
	var cut *storedBlock
	var cutEvents []audit.Event
	keep := -1
	rows, err := tx.QueryContext(ctx, `SELECT `+blockColumns+` FROM audit_blocks WHERE max_time >= $1 ORDER BY first_id`, db.ts(cutoff))
	if err != nil {
		return audit.Link{}, 0, err
	}
	for rows.Next() {
		b, err := scanBlock(rows)
		if err != nil {
			rows.Close()
			return audit.Link{}, 0, err
		}
		events, err := audit.AppendDecoded(nil, b.data, b.prevHash)
		if err != nil {
			rows.Close()
			return audit.Link{}, 0, unreadableForPurge(b.firstID, err)
		}
		for i, e := range events {
			if !e.Time.Before(cutoff) {
				cut, cutEvents, keep = &b, events, i
				break
			}
		}
		if cut != nil {
			break
		}
	}
	if err := rows.Close(); err != nil {
		return audit.Link{}, 0, err
	}
	if err := rows.Err(); err != nil {
		return audit.Link{}, 0, err
	}

	// last is the last event removed.
	last := c.Head.ID
	if cut != nil {
		last = cutEvents[keep].ID - 1
	}
	if last <= c.Anchor.ID {
		return c.Anchor, 0, nil
	}
	var anchor audit.Link
	if keep > 0 {
		prev := cutEvents[keep-1]
		anchor = audit.Link{ID: prev.ID, Hash: prev.Hash}
	} else {
		// The last event of the block before the cut (or of the last
		// block, when every event goes).
		q := `SELECT ` + blockColumns + ` FROM audit_blocks ORDER BY first_id DESC LIMIT 1`
		var args []any
		if cut != nil {
			q = `SELECT ` + blockColumns + ` FROM audit_blocks WHERE first_id < $1 ORDER BY first_id DESC LIMIT 1`
			args = append(args, cut.firstID)
		}
		b, err := scanBlock(tx.QueryRowContext(ctx, q, args...))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return audit.Link{}, 0, err
		}
		if err == nil {
			events, err := audit.AppendDecoded(nil, b.data, b.prevHash)
			if err != nil {
				return audit.Link{}, 0, unreadableForPurge(b.firstID, err)
			}
			if n := len(events); n > 0 {
				anchor = audit.Link{ID: events[n-1].ID, Hash: events[n-1].Hash}
			}
		}
	}
	if anchor.ID != last {
		return audit.Link{}, 0, apperr.Errorf(apperr.ECONFLICT,
			"cannot purge: audit event %d is missing, so the trail is already broken; run `customs audit verify`", last)
	}

	// Delete the blocks before the cut, counting their events.
	bound := c.Head.ID + 1
	if cut != nil {
		bound = cut.firstID
	}
	var deleted sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT SUM(last_id - first_id + 1) FROM audit_blocks WHERE first_id < $1`, bound).
		Scan(&deleted); err != nil {
		return audit.Link{}, 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_block_keys WHERE first_id < $1`, bound); err != nil {
		return audit.Link{}, 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_blocks WHERE first_id < $1`, bound); err != nil {
		return audit.Link{}, 0, err
	}
	n := deleted.Int64
	if keep > 0 {
		// Rewrite the cut block with the events it keeps.
		if err := deleteBlock(ctx, tx, cut.firstID); err != nil {
			return audit.Link{}, 0, err
		}
		kept := cutEvents[keep:]
		kept[0].PrevHash = anchor.Hash
		w := newBlockWriter(ctx, tx, db.d)
		for _, b := range splitBlocks(kept) {
			if err := w.insert(b); err != nil {
				return audit.Link{}, 0, err
			}
		}
		n += int64(keep)
	}
	return anchor, n, nil
}

// unreadableForPurge is the error of a purge that meets a block it cannot
// decode.
func unreadableForPurge(firstID int64, err error) error {
	return apperr.Errorf(apperr.ECONFLICT,
		"cannot purge: the stored audit block of events from %d is unreadable (%v), so the trail is already broken; run `customs audit verify`",
		firstID, err)
}
