package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

// The audit trail is kept in audit_events and the one row of audit_chain
// (head and anchor). Appends lock that row (PostgreSQL: FOR UPDATE; SQLite:
// the write transaction holds the database), so concurrent appenders, in
// one process or many, take turns: each assigns IDs from the head, chains
// hashes from the head's hash and moves the head before committing.

// auditColumns are audit_events' columns in the order scanAuditEvent reads
// and insertAudit writes them.
const auditColumns = `id, occurred_at, actor_kind, actor, client_ip, user_agent, action, resource, project, outcome, reason, details, prev_hash, hash`

// auditColumnCount is how many columns auditColumns names.
const auditColumnCount = 14

// insertAuditSQL returns the statement inserting rows events.
func insertAuditSQL(rows int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO audit_events (` + auditColumns + `) VALUES `)
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		q.WriteString(placeholders(i*auditColumnCount+1, auditColumnCount))
		q.WriteByte(')')
	}
	return q.String()
}

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

// appendAuditTx chains batch onto the head and stores it in tx. It sets the
// events' IDs and hashes; on a retry it runs again and recomputes them.
func (db *DB) appendAuditTx(ctx context.Context, tx *sql.Tx, batch []audit.Event) error {
	var head audit.Link
	if err := tx.QueryRowContext(ctx,
		`SELECT last_id, last_hash FROM audit_chain WHERE id = 1`+db.d.lock("FOR UPDATE")).
		Scan(&head.ID, &head.Hash); err != nil {
		return err
	}
	for i := range batch {
		e := &batch[i]
		e.ID, e.PrevHash = head.ID+1, head.Hash
		e.Hash = audit.Hash(*e)
		head = audit.Link{ID: e.ID, Hash: e.Hash}
	}
	if err := db.insertAudit(ctx, tx, batch); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE audit_chain SET last_id = $1, last_hash = $2 WHERE id = 1`, head.ID, head.Hash)
	return err
}

// insertAudit inserts events in tx, Dialect.InsertRows per statement: a
// statement for that many rows is prepared once and run for each full
// chunk, and the rest goes in one last statement.
//
// Without row locks (SQLite) the transaction holds the whole database, so
// a statement in it never waits for another writer: the statements run
// with ctx's values but not its cancellation, and ctx is checked between
// them instead. modernc.org/sqlite starts a goroutine per statement to
// watch a cancellable context; this way a batch of 500 events starts none,
// and a cancelled ctx still stops the batch within one statement (and the
// transaction, begun with ctx, is rolled back). On SQLite this takes a
// quarter of the writer's CPU time per event (BenchmarkAuditAppend); audit
// rows stay one per statement there: 8 per statement doubled it.
func (db *DB) insertAudit(ctx context.Context, tx *sql.Tx, events []audit.Event) error {
	per := max(db.d.InsertRows, 1)
	execCtx := ctx
	if !db.d.RowLocks {
		execCtx = context.WithoutCancel(ctx)
	}
	var full *sql.Stmt
	if len(events) >= per {
		var err error
		if full, err = tx.PrepareContext(ctx, insertAuditSQL(per)); err != nil {
			return err
		}
		defer full.Close()
	}
	args := make([]any, 0, min(per, len(events))*auditColumnCount)
	var details []byte
	for start := 0; start < len(events); start += per {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := events[start:min(start+per, len(events))]
		args = args[:0]
		for _, e := range chunk {
			var d any
			if len(e.Details) > 0 {
				details = appendDetailsJSON(details[:0], e.Details)
				d = string(details)
			}
			args = append(args, e.ID, db.ts(e.Time), e.ActorKind, e.Actor, e.ClientIP, e.UserAgent, e.Action,
				e.Resource, e.Project, string(e.Outcome), e.Reason, d, e.PrevHash, e.Hash)
		}
		var err error
		if len(chunk) == per {
			_, err = full.ExecContext(execCtx, args...)
		} else {
			_, err = tx.ExecContext(execCtx, insertAuditSQL(len(chunk)), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendDetailsJSON appends details as a JSON object to b, keys in byte
// order: what json.Marshal writes for a map[string]string, without its
// reflection and sorting allocations.
func appendDetailsJSON(b []byte, details map[string]string) []byte {
	var keys [16]string
	ks := keys[:0]
	for k := range details {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	b = append(b, '{')
	for i, k := range ks {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, details[k])
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML-safe: <, > and & as \u003c, \u003e, \u0026; U+2028 and
// U+2029 escaped). s is valid UTF-8 (audit.Normalize makes it so).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// scanAuditEvent reads one row of auditColumns.
func scanAuditEvent(rows *sql.Rows) (audit.Event, error) {
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
			// A row edited into invalid JSON: keep the text visible so that
			// verification reports the event as altered.
			e.Details = map[string]string{"": details.String}
		}
	}
	return e, nil
}

// AuditEvents returns the events matching f, newest first.
func (db *DB) AuditEvents(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	n, err := limit(f.N)
	if err != nil {
		return nil, err
	}
	if f.Before < 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "event id %d is negative", f.Before)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !f.Since.IsZero() {
		where = append(where, `occurred_at >= `+arg(db.ts(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, `occurred_at < `+arg(db.ts(f.Until)))
	}
	if f.Actor != "" {
		where = append(where, `actor = `+arg(f.Actor))
	}
	if f.Project != "" {
		where = append(where, `project = `+arg(f.Project))
	}
	if f.Action != "" {
		where = append(where, `(action = `+arg(f.Action)+` OR substr(action, 1, `+arg(len(f.Action)+1)+`) = `+arg(f.Action+".")+`)`)
	}
	if f.Outcome != "" {
		where = append(where, `outcome = `+arg(string(f.Outcome)))
	}
	if f.Resource != "" {
		// replace() finds a substring case-sensitively in both databases
		// (LIKE does not: SQLite's ignores ASCII case).
		where = append(where, `replace(resource, `+arg(f.Resource)+`, '') <> resource`)
	}
	if f.Before > 0 {
		where = append(where, `id < `+arg(f.Before))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(n)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []audit.Event{}
	for rows.Next() {
		e, err := scanAuditEvent(rows)
		if err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, e)
	}
	return out, db.wrap(rows.Err())
}

// ScanAudit calls fn with the chain's anchor and head and every stored
// event in ID order, read from one snapshot (a read-only transaction:
// REPEATABLE READ in PostgreSQL, a WAL snapshot in SQLite).
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
		rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events ORDER BY id`)
		if err != nil {
			yield(audit.Event{}, db.wrap(err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanAuditEvent(rows)
			if err != nil {
				yield(audit.Event{}, db.wrap(err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(audit.Event{}, db.wrap(err))
		}
	}
	return fn(c, events)
}

// PurgeAudit removes the longest run of oldest events all older than
// before, anchors the chain at the last one removed and records the purge
// as by, in one transaction. It returns how many events were removed.
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
		last := c.Head.ID
		var firstKept int64
		err := tx.QueryRowContext(ctx,
			`SELECT id FROM audit_events WHERE occurred_at >= $1 ORDER BY id LIMIT 1`, db.ts(cutoff)).Scan(&firstKept)
		switch {
		case err == nil:
			last = firstKept - 1
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		anchor := c.Anchor
		deleted = 0
		if last > c.Anchor.ID {
			anchor.ID = last
			err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_events WHERE id = $1`, last).Scan(&anchor.Hash)
			if errors.Is(err, sql.ErrNoRows) {
				return apperr.Errorf(apperr.ECONFLICT,
					"cannot purge: audit event %d is missing, so the trail is already broken; run `customs audit verify`", last)
			}
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE id <= $1`, last)
			if err != nil {
				return err
			}
			if deleted, err = res.RowsAffected(); err != nil {
				return err
			}
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
