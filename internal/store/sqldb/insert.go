package sqldb

import (
	"context"
	"database/sql"
	"strings"
)

// rowInserter inserts rows of a fixed number of columns into one table in
// a transaction, Dialect.InsertRows rows per statement: the statement for
// a full chunk is prepared once, the rest goes in one last statement.
type rowInserter struct {
	tx     *sql.Tx
	prefix string // "INSERT INTO t (a, b) VALUES "
	suffix string // " ON CONFLICT ..." or ""
	cols   int
	per    int
	full   *sql.Stmt
	args   []any
}

// newRowInserter returns an inserter for "prefix (rows...) suffix".
func (db *DB) newRowInserter(tx *sql.Tx, prefix, suffix string, cols int) *rowInserter {
	return &rowInserter{tx: tx, prefix: prefix, suffix: suffix, cols: cols, per: max(db.d.InsertRows, 1)}
}

// add queues one row (exactly cols values) and runs a statement when a
// chunk is full.
func (ri *rowInserter) add(ctx context.Context, values ...any) error {
	ri.args = append(ri.args, values...)
	if len(ri.args) < ri.per*ri.cols {
		return nil
	}
	if ri.full == nil {
		st, err := ri.tx.PrepareContext(ctx, ri.query(ri.per))
		if err != nil {
			return err
		}
		ri.full = st
	}
	_, err := ri.full.ExecContext(ctx, ri.args...)
	ri.args = ri.args[:0]
	return err
}

// flush inserts the queued rows and releases the prepared statement.
func (ri *rowInserter) flush(ctx context.Context) error {
	defer func() {
		if ri.full != nil {
			_ = ri.full.Close()
			ri.full = nil
		}
	}()
	if len(ri.args) == 0 {
		return nil
	}
	_, err := ri.tx.ExecContext(ctx, ri.query(len(ri.args)/ri.cols), ri.args...)
	ri.args = ri.args[:0]
	return err
}

func (ri *rowInserter) query(rows int) string {
	var b strings.Builder
	b.WriteString(ri.prefix)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteString(placeholders(i*ri.cols+1, ri.cols))
		b.WriteByte(')')
	}
	b.WriteString(ri.suffix)
	return b.String()
}
