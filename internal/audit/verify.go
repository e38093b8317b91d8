package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
)

// PurgeAction is the action of the event a purge appends, in the purge's
// own transaction.
const PurgeAction = "audit.purge"

// Detail keys of a purge event.
const (
	DetailBefore     = "before"     // the cutoff, RFC 3339
	DetailDeleted    = "deleted"    // how many events were removed
	DetailAnchorID   = "anchorId"   // the chain's anchor after the purge
	DetailAnchorHash = "anchorHash" // and its hash
)

// Break says where and why verification found a chain broken.
type Break struct {
	// ID is the first event found wrong: an altered event, the first
	// missing one, or the one whose link to its predecessor is broken.
	ID     int64  `json:"id"`
	Reason string `json:"reason"`
}

// Report is the result of verifying a chain.
type Report struct {
	// OK is true when every event and the chain's head and anchor check out.
	OK bool `json:"ok"`
	// Events counts the events checked (up to the break, if any).
	Events int64 `json:"events"`
	// FirstID and LastID are the IDs of the first and last events checked.
	FirstID int64 `json:"firstId,omitempty"`
	LastID  int64 `json:"lastId,omitempty"`
	// Chain is the anchor and head the store recorded.
	Chain Chain `json:"chain"`
	// Broken is set when OK is false.
	Broken *Break `json:"broken,omitempty"`
}

// String is a one-line summary for people.
func (r Report) String() string {
	if r.Broken != nil {
		return fmt.Sprintf("audit trail broken at event %d: %s", r.Broken.ID, r.Broken.Reason)
	}
	if r.Events == 0 {
		return fmt.Sprintf("audit trail intact: no events after anchor %d; head hash %s", r.Chain.Anchor.ID, r.Chain.Head.Hash)
	}
	return fmt.Sprintf("audit trail intact: %d events (ids %d-%d); head hash %s", r.Events, r.FirstID, r.LastID, r.Chain.Head.Hash)
}

// Verifier checks a stored chain event by event. Feed it every stored event
// in ID order with Add, then call Finish.
type Verifier struct {
	prev      Link
	rep       Report
	lastPurge *Event
	// mismatch is the first index mismatch (see BlockError.Index), reported
	// by Finish if nothing else is wrong.
	mismatch *Break
}

// NewVerifier returns a Verifier of a chain whose store recorded c.
func NewVerifier(c Chain) *Verifier {
	return &Verifier{prev: c.Anchor, rep: Report{Chain: c}}
}

// Add checks the next stored event. It returns false once the chain is
// found broken; later events are not checked.
func (v *Verifier) Add(e Event) bool {
	if v.rep.Broken != nil {
		return false
	}
	want := v.prev.ID + 1
	switch {
	case e.ID > want:
		return v.fail(want, "missing: the ids jump from %d to %d (events were deleted)", v.prev.ID, e.ID)
	case e.ID < want:
		return v.fail(e.ID, "out of order: it comes after event %d", v.prev.ID)
	case e.PrevHash != v.prev.Hash:
		return v.fail(e.ID, "its prevHash %s is not the hash %s of event %d before it (an earlier event was replaced or removed)",
			short(e.PrevHash), short(v.prev.Hash), v.prev.ID)
	}
	if h := Hash(e); h != e.Hash {
		return v.fail(e.ID, "altered: its fields hash to %s, not to its stored hash %s", short(h), short(e.Hash))
	}
	if e.Action == PurgeAction {
		p := e
		v.lastPurge = &p
	}
	if v.rep.Events == 0 {
		v.rep.FirstID = e.ID
	}
	v.rep.Events++
	v.rep.LastID = e.ID
	v.prev = Link{ID: e.ID, Hash: e.Hash}
	return true
}

// Finish checks that the events ended at the recorded head and that the
// anchor was set by a purge, and returns the report.
func (v *Verifier) Finish() Report {
	if v.rep.Broken != nil {
		return v.rep
	}
	c := v.rep.Chain
	switch {
	case v.prev.ID < c.Head.ID:
		v.fail(v.prev.ID+1, "missing: the chain head is event %d but the last stored event is %d (the newest events were deleted)", c.Head.ID, v.prev.ID)
	case v.prev.ID > c.Head.ID:
		v.fail(c.Head.ID+1, "not appended through the store: the chain head is event %d, yet events up to %d are stored", c.Head.ID, v.prev.ID)
	case v.prev.Hash != c.Head.Hash:
		v.fail(c.Head.ID, "altered: the chain head records hash %s for it, the stored chain ends in %s", short(c.Head.Hash), short(v.prev.Hash))
	case c.Anchor.ID > 0 && v.lastPurge == nil:
		v.fail(c.Anchor.ID, "missing: events up to %d were removed, but no %s event records a purge", c.Anchor.ID, PurgeAction)
	case c.Anchor.ID > 0 && (v.lastPurge.Details[DetailAnchorID] != strconv.FormatInt(c.Anchor.ID, 10) ||
		v.lastPurge.Details[DetailAnchorHash] != c.Anchor.Hash):
		v.fail(v.lastPurge.ID, "the last purge left the chain anchored at event %s, but the chain now starts after event %d (events were removed outside a purge)",
			v.lastPurge.Details[DetailAnchorID], c.Anchor.ID)
	case v.mismatch != nil:
		v.rep.Broken = v.mismatch
	default:
		v.rep.OK = true
	}
	return v.rep
}

func (v *Verifier) fail(id int64, format string, args ...any) bool {
	v.rep.Broken = &Break{ID: id, Reason: fmt.Sprintf(format, args...)}
	return false
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	if h == "" {
		return `""`
	}
	return h
}

// BlockError is an error a store's event sequence yields (see Scanner)
// for stored events it cannot read, or whose stored description does not
// match them: Verify reports the chain broken at ID for Reason instead of
// failing.
type BlockError struct {
	// ID is the first event ID the store recorded for the bad data.
	ID int64
	// Reason starts with what is wrong ("unreadable: ...").
	Reason string
	// Index is true when the events were read (and yielded) and only what
	// the store records to find them, such as their IDs' or times' range,
	// does not match them: the sequence goes on, and the mismatch breaks
	// the chain only if nothing else does (an edited or deleted event is
	// the more useful report, and leaves such mismatches behind).
	Index bool
}

func (e *BlockError) Error() string {
	return fmt.Sprintf("audit events from %d: %s", e.ID, e.Reason)
}

// IndexOnly reports whether err is a *BlockError with Index set: the
// events were all read and only the store's description of them is off,
// which readers other than verification may ignore.
func IndexOnly(err error) bool {
	var be *BlockError
	return errors.As(err, &be) && be.Index
}

// Unusable records that the stored events from id on could not be checked
// for reason (see BlockError). If events before id are missing, that is
// reported instead, as the first thing wrong. It returns false.
func (v *Verifier) Unusable(id int64, reason string) bool {
	if v.rep.Broken != nil {
		return false
	}
	if want := v.prev.ID + 1; id > want {
		return v.fail(want, "missing: the ids jump from %d to %d (events were deleted)", v.prev.ID, id)
	}
	return v.fail(id, "%s", reason)
}

// IndexMismatch records that the store's description of the events from id
// on does not match them (see BlockError.Index): Finish reports it if
// nothing else is wrong.
func (v *Verifier) IndexMismatch(id int64, reason string) {
	if v.mismatch == nil {
		v.mismatch = &Break{ID: id, Reason: reason}
	}
}

// Verify checks a chain recorded as c whose events, in ID order, are
// events. A *BlockError among them breaks the chain (see
// Verifier.Unusable and Verifier.IndexMismatch); any other error is a failure to read events, not a
// broken chain (see Report.OK), and is returned.
func Verify(c Chain, events iter.Seq2[Event, error]) (Report, error) {
	v := NewVerifier(c)
	for e, err := range events {
		var be *BlockError
		if errors.As(err, &be) && be.Index {
			v.IndexMismatch(be.ID, be.Reason)
			continue
		}
		if errors.As(err, &be) {
			v.Unusable(be.ID, be.Reason)
			break
		}
		if err != nil {
			return Report{}, err
		}
		if !v.Add(e) {
			break
		}
	}
	return v.Finish(), nil
}

// Scanner reads a stored audit trail (store.AuditStore is one).
type Scanner interface {
	// ScanAudit calls fn with the chain's anchor and head and every stored
	// event in ID order, all from one consistent snapshot. Stored events
	// that cannot be read are a *BlockError in the sequence, after the
	// events before them, and end it.
	ScanAudit(ctx context.Context, fn func(c Chain, events iter.Seq2[Event, error]) error) error
}

// VerifyStore verifies the trail s holds.
func VerifyStore(ctx context.Context, s Scanner) (Report, error) {
	var rep Report
	err := s.ScanAudit(ctx, func(c Chain, events iter.Seq2[Event, error]) error {
		var err error
		rep, err = Verify(c, events)
		return err
	})
	return rep, err
}
