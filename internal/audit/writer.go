package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/apperr"
)

// Appender stores batches of events, atomically and in order
// (store.AuditStore is one).
type Appender interface {
	// AppendAudit stores events in order in one transaction, chaining
	// them; EINVALID (and nothing stored) if one of them cannot be stored.
	AppendAudit(ctx context.Context, events []Event) error
}

// WriterOptions configures a Writer. Store is required; zero values of the
// others mean the defaults.
type WriterOptions struct {
	Store Appender
	// Logger receives flush failures; nil discards.
	Logger *slog.Logger
	// Registerer, if not nil, gets the writer's metrics (customs_audit_*).
	Registerer prometheus.Registerer
	// QueueSize is how many events may wait before Record blocks
	// (default 10,000).
	QueueSize int
	// BatchSize is the most events written in one transaction (default
	// 1,000); a full batch is written at once.
	BatchSize int
	// FlushInterval is how long an event waits at most before its batch
	// is written when fewer than BatchSize are queued and the writer is
	// not busy (default 50 ms).
	FlushInterval time.Duration
	// MaxFlushInterval is how long an event may wait at most while the
	// writer is busy (default 250 ms, at least FlushInterval): after a
	// flush that stored at least BatchSize/8 events the wait before the
	// next one doubles, up to this; after a smaller flush it is back to
	// FlushInterval. Under load batches grow, and with them the events
	// that share one commit (its WAL frames, fsync and chain-head update);
	// idle, an event is stored within FlushInterval. Close writes
	// everything queued at once either way.
	MaxFlushInterval time.Duration
	// MaxBlock is how long Record waits for room in a full queue before
	// queueing the event anyway (default 100 ms).
	MaxBlock time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to write a
	// batch that failed (default 100 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// Now stamps events recorded without a time (default time.Now).
	Now func() time.Time
	// Skip lists actions (exact names, such as "artifact.pull") whose
	// successful events are not stored: an operator's choice (config
	// audit.skip) for high-volume actions. Denied and failed events of
	// these actions are still stored. Skipped events are counted in
	// customs_audit_events_skipped_total.
	Skip []string
}

// Writer is the Recorder every server component records through: Record
// queues the event and returns, and one goroutine writes the queue to the
// store in batches, one transaction per batch, in the order recorded.
//
// Nothing recorded is dropped while the process lives: when the queue is
// full Record blocks up to MaxBlock and then queues beyond the limit
// (counted in customs_audit_queue_overflow_total); a batch that fails to be
// written is kept and retried with backoff, logged at error level each
// time. Close writes everything still queued. The only events not stored
// are invalid ones (a producer's bug: logged and counted in
// customs_audit_events_rejected_total) and those still queued when Close's
// deadline passes (logged and counted in customs_audit_events_lost_total).
type Writer struct {
	o      WriterOptions
	skip   map[string]bool // WriterOptions.Skip
	log    *slog.Logger
	m      writerMetrics
	ctx    context.Context // cancelled when Close gives up
	cancel context.CancelFunc

	mu       sync.Mutex
	queue    []Event
	inflight int           // events taken from the queue, not yet stored
	room     chan struct{} // closed (and replaced) when events leave the queue
	closed   bool

	kick    chan struct{} // a full batch is waiting
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the flusher has exited
}

var _ Recorder = (*Writer)(nil)

type writerMetrics struct {
	written, flushErrors, blocked, overflow, rejected, lost, skipped prometheus.Counter
	batchSize, flushSeconds                                          prometheus.Histogram
	queueLength                                                      prometheus.GaugeFunc
}

// NewWriter starts a Writer. Call Close to stop it.
func NewWriter(o WriterOptions) *Writer {
	if o.Store == nil {
		panic("audit: WriterOptions.Store is required")
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 50 * time.Millisecond
	}
	if o.MaxFlushInterval <= 0 {
		o.MaxFlushInterval = max(250*time.Millisecond, o.FlushInterval)
	}
	o.MaxFlushInterval = max(o.MaxFlushInterval, o.FlushInterval)
	if o.MaxBlock <= 0 {
		o.MaxBlock = 100 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Writer{
		o:       o,
		log:     o.Logger,
		room:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if len(o.Skip) > 0 {
		w.skip = make(map[string]bool, len(o.Skip))
		for _, a := range o.Skip {
			w.skip[a] = true
		}
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.m = newWriterMetrics(w.Pending)
	if o.Registerer != nil {
		o.Registerer.MustRegister(w.m.written, w.m.flushErrors, w.m.blocked, w.m.overflow, w.m.rejected, w.m.lost, w.m.skipped,
			w.m.batchSize, w.m.flushSeconds, w.m.queueLength)
	}
	go w.run()
	return w
}

func newWriterMetrics(pending func() int) writerMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	return writerMetrics{
		written:     counter("customs_audit_events_written_total", "Audit events stored."),
		flushErrors: counter("customs_audit_flush_errors_total", "Failed attempts to store a batch of audit events (the batch is retried)."),
		blocked:     counter("customs_audit_record_blocked_total", "Audit events whose producer waited because the queue was full."),
		overflow:    counter("customs_audit_queue_overflow_total", "Audit events queued beyond the queue size after waiting for room."),
		rejected:    counter("customs_audit_events_rejected_total", "Invalid audit events refused (a producer's bug; each is logged)."),
		lost:        counter("customs_audit_events_lost_total", "Audit events that could not be stored before shutdown (each batch is logged)."),
		skipped:     counter("customs_audit_events_skipped_total", "Successful audit events not stored because their action is in audit.skip."),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "customs_audit_batch_size", Help: "Audit events per stored batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000},
		}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "customs_audit_flush_duration_seconds", Help: "Time to store one batch of audit events.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}),
		queueLength: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "customs_audit_queue_length", Help: "Audit events recorded but not yet stored.",
		}, func() float64 { return float64(pending()) }),
	}
}

// Record queues e to be stored. It stamps e with the writer's clock if
// e.Time is zero and fills ClientIP and UserAgent from ctx (see WithClient)
// where e lacks them. It returns without waiting for the store, unless the
// queue is full (then it waits up to MaxBlock), and never fails the caller.
// A successful event of an action in WriterOptions.Skip is counted and
// dropped.
func (w *Writer) Record(ctx context.Context, e Event) {
	if w.skip != nil && e.Outcome == Success && w.skip[e.Action] {
		w.m.skipped.Inc()
		return
	}
	if e.Time.IsZero() {
		e.Time = w.o.Now()
	}
	if e.ClientIP == "" || e.UserAgent == "" {
		ip, ua := ClientFrom(ctx)
		if e.ClientIP == "" {
			e.ClientIP = ip
		}
		if e.UserAgent == "" {
			e.UserAgent = ua
		}
	}
	e = Normalize(e)
	e.ID, e.PrevHash, e.Hash = 0, "", ""
	if err := Validate(e); err != nil {
		w.m.rejected.Inc()
		w.log.Error("audit: refusing an invalid event (a bug in its producer)", "err", err, "event", fmt.Sprintf("%+v", e))
		return
	}

	w.mu.Lock()
	if len(w.queue) >= w.o.QueueSize && !w.closed {
		w.m.blocked.Inc()
		deadline := time.Now().Add(w.o.MaxBlock)
		for len(w.queue) >= w.o.QueueSize && !w.closed {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			room := w.room
			w.mu.Unlock()
			t := time.NewTimer(left)
			select {
			case <-room:
			case <-t.C:
			}
			t.Stop()
			w.mu.Lock()
		}
		if len(w.queue) >= w.o.QueueSize && !w.closed {
			w.m.overflow.Inc()
			w.log.Warn("audit: event queue full; queueing beyond its size (is the database slow or down?)",
				"queued", len(w.queue), "queue_size", w.o.QueueSize)
		}
	}
	if w.closed {
		w.mu.Unlock()
		w.appendLate(ctx, e)
		return
	}
	w.queue = append(w.queue, e)
	full := len(w.queue) >= w.o.BatchSize
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// appendLate stores an event recorded after Close, synchronously.
func (w *Writer) appendLate(ctx context.Context, e Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.o.Store.AppendAudit(ctx, []Event{e}); err != nil {
		w.m.lost.Inc()
		w.log.Error("audit: event recorded after shutdown could not be stored", "err", err, "event", fmt.Sprintf("%+v", e))
		return
	}
	w.m.written.Inc()
	w.m.batchSize.Observe(1)
}

// Pending returns how many recorded events are not stored yet.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) + w.inflight
}

// Close stops accepting events into the queue (later ones are stored
// synchronously), writes everything queued and returns once it is stored.
// If ctx ends first, it stops retrying, logs and counts what was not
// stored and returns an error saying how many events were lost.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if !already {
		close(w.closing)
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
	}
	w.cancel()
	<-w.done
	n := w.Pending()
	if n == 0 {
		return nil
	}
	w.m.lost.Add(float64(n))
	w.log.Error("audit: shutdown deadline passed before these audit events could be stored; they are lost", "events", n)
	return fmt.Errorf("audit: %d events not stored before the shutdown deadline: %w", n, ctx.Err())
}

// run is the flusher: it writes the queue whenever a batch is full, the
// flush interval passes, or Close is called, and exits once closing and
// empty (or abandoned). The interval adapts to the load (see
// WriterOptions.MaxFlushInterval).
func (w *Writer) run() {
	defer close(w.done)
	defer w.cancel()
	interval := w.o.FlushInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	closing := false
	for {
		select {
		case <-w.kick:
		case <-timer.C:
		case <-w.closing:
			closing = true
		}
		n := 0
		for {
			batch := w.take()
			if len(batch) == 0 {
				break
			}
			if !w.write(batch) {
				return // abandoned by Close
			}
			n += len(batch)
		}
		if closing {
			return
		}
		interval = nextFlushInterval(interval, n, w.o)
		timer.Reset(interval)
	}
}

// nextFlushInterval is the wait before the next flush after one that
// stored n events and followed a wait of cur: doubled (up to
// MaxFlushInterval) when n is at least BatchSize/8, FlushInterval
// otherwise.
func nextFlushInterval(cur time.Duration, n int, o WriterOptions) time.Duration {
	if n >= max(o.BatchSize/8, 1) {
		return min(2*cur, o.MaxFlushInterval)
	}
	return o.FlushInterval
}

// take moves up to BatchSize events from the queue to the flusher.
func (w *Writer) take() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.queue), w.o.BatchSize)
	if n == 0 {
		return nil
	}
	batch := make([]Event, n)
	copy(batch, w.queue)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	w.inflight = n
	close(w.room)
	w.room = make(chan struct{})
	return batch
}

// write stores batch, retrying with backoff until it is stored or Close
// gives up (then it returns false).
func (w *Writer) write(batch []Event) bool {
	backoff := w.o.MinBackoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := w.o.Store.AppendAudit(w.ctx, batch)
		if err == nil {
			w.m.flushSeconds.Observe(time.Since(start).Seconds())
			w.stored(len(batch))
			return true
		}
		if w.ctx.Err() != nil {
			return false
		}
		if apperr.Is(err, apperr.EINVALID) && len(batch) > 1 {
			// One event the store refuses must not hold back the rest.
			return w.writeEach(batch)
		}
		if apperr.Is(err, apperr.EINVALID) {
			w.m.rejected.Inc()
			w.log.Error("audit: the store refused an event", "err", err, "event", fmt.Sprintf("%+v", batch[0]))
			w.stored(0)
			return true
		}
		w.m.flushErrors.Inc()
		w.log.Error("audit: storing audit events failed; keeping them and retrying",
			"events", len(batch), "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-w.ctx.Done():
			return false
		}
		backoff = min(2*backoff, w.o.MaxBackoff)
	}
}

// writeEach stores the events of a refused batch one by one, in order.
func (w *Writer) writeEach(batch []Event) bool {
	for i := range batch {
		w.mu.Lock()
		w.inflight = len(batch) - i
		w.mu.Unlock()
		if !w.write(batch[i : i+1]) {
			return false
		}
	}
	return true
}

// stored accounts for n events written and the in-flight batch finished.
func (w *Writer) stored(n int) {
	if n > 0 {
		w.m.written.Add(float64(n))
		w.m.batchSize.Observe(float64(n))
	}
	w.mu.Lock()
	w.inflight = 0
	w.mu.Unlock()
}
