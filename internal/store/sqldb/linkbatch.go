package sqldb

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxLinkBatch bounds how many PutLinkedBlob calls share one transaction.
const maxLinkBatch = 64

// linkQueue collects the PutLinkedBlob calls of a DB with one writer
// (WithWriters(1)) so that the calls arriving while a write transaction
// runs are committed together in the next one: one commit, and with
// SQLite one fsync, for many pushes instead of one each. Concurrent pushes
// of large blobs tend to finish their bytes at the same moment; committed
// one by one, the last of them would wait for all the others' fsyncs.
type linkQueue struct {
	mu      sync.Mutex
	jobs    []*linkJob
	running bool // a goroutine is committing batches
}

// linkJob is one queued PutLinkedBlob call.
type linkJob struct {
	ctx  context.Context
	repo string
	d    digest.Digest
	size int64
	now  time.Time
	done chan error
}

// putLinkedBatched queues a PutLinkedBlob call and waits for its outcome.
// The wait does not end with ctx: once queued, the call's statements run
// with ctx (so a cancelled call fails there), but a call whose record is
// being committed must learn whether it was, or its caller could skip
// publishing a blob the database already lists.
func (db *DB) putLinkedBatched(ctx context.Context, repo string, d digest.Digest, size int64) error {
	j := &linkJob{ctx: ctx, repo: repo, d: d, size: size, now: db.nowUTC(), done: make(chan error, 1)}
	q := db.links
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go db.commitLinkBatches()
	}
	return <-j.done
}

// commitLinkBatches commits queued PutLinkedBlob calls, up to maxLinkBatch
// per transaction, in the order they were queued, until none is left.
func (db *DB) commitLinkBatches() {
	q := db.links
	for {
		q.mu.Lock()
		n := min(len(q.jobs), maxLinkBatch)
		if n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch := q.jobs[:n:n]
		q.jobs = q.jobs[n:]
		q.mu.Unlock()
		for i, err := range db.commitLinkBatch(batch) {
			batch[i].done <- err
		}
	}
}

// commitLinkBatch records and links every job's blob in one transaction and
// returns each job's error. A job that fails is rolled back to a savepoint
// taken before it, so it leaves nothing behind and the others still commit;
// if the transaction itself fails, every job gets its error.
func (db *DB) commitLinkBatch(jobs []*linkJob) []error {
	errs := make([]error, len(jobs))
	if len(jobs) == 1 {
		j := jobs[0]
		errs[0] = db.inTx(j.ctx, true, func(tx *sql.Tx) error { return db.putLinked(j.ctx, tx, j.repo, j.d, j.size, j.now) })
		return errs
	}
	// The transaction belongs to all the jobs: none of their contexts may
	// roll it back.
	ctx := context.Background()
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		clear(errs)
		for i, j := range jobs {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT link_job`); err != nil {
				return err
			}
			if err := db.putLinked(j.ctx, tx, j.repo, j.d, j.size, j.now); err != nil {
				errs[i] = db.wrap(err)
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT link_job`); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT link_job`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}
