package audit_test

import (
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/audit"
)

// chain builds n linked events after anchor, as a store would.
func chain(anchor audit.Link, n int) []audit.Event {
	var out []audit.Event
	prev := anchor
	for i := range n {
		e := audit.Event{ID: prev.ID + 1, Time: time.Unix(int64(i), 0).UTC(), ActorKind: audit.ActorSystem,
			Action: "test.event", Outcome: audit.Success, PrevHash: prev.Hash}
		e.Hash = audit.Hash(e)
		out = append(out, e)
		prev = audit.Link{ID: e.ID, Hash: e.Hash}
	}
	return out
}

func seq(events []audit.Event) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func headOf(anchor audit.Link, events []audit.Event) audit.Chain {
	c := audit.Chain{Anchor: anchor, Head: anchor}
	if len(events) > 0 {
		last := events[len(events)-1]
		c.Head = audit.Link{ID: last.ID, Hash: last.Hash}
	}
	return c
}

var genesis = audit.Link{Hash: audit.GenesisHash}

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		build      func() (audit.Chain, []audit.Event)
		wantID     int64 // 0: intact
		wantReason string
	}{
		{"intact", func() (audit.Chain, []audit.Event) {
			ev := chain(genesis, 4)
			return headOf(genesis, ev), ev
		}, 0, ""},
		{"empty", func() (audit.Chain, []audit.Event) { return headOf(genesis, nil), nil }, 0, ""},
		{"head hash differs", func() (audit.Chain, []audit.Event) {
			ev := chain(genesis, 3)
			c := headOf(genesis, ev)
			c.Head.Hash = strings.Repeat("f", 64)
			return c, ev
		}, 3, "chain head records hash"},
		{"head behind the events", func() (audit.Chain, []audit.Event) {
			ev := chain(genesis, 3)
			return headOf(genesis, ev[:2]), ev
		}, 3, "not appended through the store"},
		{"all events deleted", func() (audit.Chain, []audit.Event) {
			return headOf(genesis, chain(genesis, 3)), nil
		}, 1, "missing"},
		{"duplicate id", func() (audit.Chain, []audit.Event) {
			ev := chain(genesis, 3)
			ev = append(ev[:2], ev[1], ev[2])
			return headOf(genesis, ev), ev
		}, 2, "out of order"},
		{"anchored without a purge", func() (audit.Chain, []audit.Event) {
			anchor := audit.Link{ID: 10, Hash: strings.Repeat("a", 64)}
			ev := chain(anchor, 2)
			return headOf(anchor, ev), ev
		}, 10, "no audit.purge"},
		{"anchored by a purge", func() (audit.Chain, []audit.Event) {
			anchor := audit.Link{ID: 10, Hash: strings.Repeat("a", 64)}
			p := audit.Event{ID: 11, ActorKind: audit.ActorSystem, Action: audit.PurgeAction, Outcome: audit.Success,
				PrevHash: anchor.Hash, Details: map[string]string{audit.DetailAnchorID: "10", audit.DetailAnchorHash: anchor.Hash}}
			p.Hash = audit.Hash(p)
			ev := append([]audit.Event{p}, chain(audit.Link{ID: 11, Hash: p.Hash}, 2)...)
			return headOf(anchor, ev), ev
		}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ev := tc.build()
			rep, err := audit.Verify(c, seq(ev))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantID == 0 {
				if !rep.OK || rep.Broken != nil || rep.Events != int64(len(ev)) {
					t.Fatalf("report %+v (broken %+v), want intact with %d events", rep, rep.Broken, len(ev))
				}
				if !strings.Contains(rep.String(), "intact") {
					t.Errorf("summary %q", rep.String())
				}
				return
			}
			if rep.OK || rep.Broken == nil {
				t.Fatalf("report %+v, want broken at %d", rep, tc.wantID)
			}
			if rep.Broken.ID != tc.wantID || !strings.Contains(rep.Broken.Reason, tc.wantReason) {
				t.Errorf("broken at %d (%s), want %d mentioning %q", rep.Broken.ID, rep.Broken.Reason, tc.wantID, tc.wantReason)
			}
			if s := rep.String(); !strings.Contains(s, fmt.Sprintf("broken at event %d", tc.wantID)) {
				t.Errorf("summary %q does not name the event", s)
			}
		})
	}
}

func TestVerifyStopsAtTheFirstBreak(t *testing.T) {
	ev := chain(genesis, 10)
	ev[3].Actor = "mallory"
	pulled := 0
	events := func(yield func(audit.Event, error) bool) {
		for _, e := range ev {
			pulled++
			if !yield(e, nil) {
				return
			}
		}
	}
	rep, err := audit.Verify(headOf(genesis, ev), events)
	if err != nil || rep.Broken == nil || rep.Broken.ID != 4 {
		t.Fatalf("Verify = %+v, %v; want broken at 4", rep, err)
	}
	if pulled != 4 || rep.Events != 3 {
		t.Errorf("read %d events and counted %d good ones, want 4 and 3", pulled, rep.Events)
	}
}

func TestVerifyReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	events := func(yield func(audit.Event, error) bool) { yield(audit.Event{}, boom) }
	if _, err := audit.Verify(headOf(genesis, nil), events); !errors.Is(err, boom) {
		t.Errorf("Verify error = %v, want the read error", err)
	}
}

// withError yields events and then err.
func withError(events []audit.Event, err error) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
		yield(audit.Event{}, err)
	}
}

func TestVerifyBlockError(t *testing.T) {
	genesis := audit.Link{Hash: audit.GenesisHash}
	events := chain(genesis, 6)
	c := headOf(genesis, events)
	for _, tc := range []struct {
		name    string
		before  []audit.Event
		blockID int64
		wantID  int64
		reason  string
	}{
		{"unreadable block after good events", events[:3], 4, 4, "unreadable: bad length"},
		{"unreadable first block", nil, 1, 1, "unreadable: bad length"},
		{"events missing before the unreadable block", events[:2], 5, 3, "missing: the ids jump from 2 to 5"},
		{"header mismatch of a block already read", events[:3], 2, 2, "unreadable: bad length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := audit.Verify(c, withError(tc.before, &audit.BlockError{ID: tc.blockID, Reason: "unreadable: bad length"}))
			if err != nil {
				t.Fatalf("Verify returned %v, want a broken report", err)
			}
			if rep.OK || rep.Broken == nil || rep.Broken.ID != tc.wantID || !strings.Contains(rep.Broken.Reason, tc.reason) {
				t.Fatalf("report %+v (broken %+v), want broken at %d: %s", rep, rep.Broken, tc.wantID, tc.reason)
			}
			if want := fmt.Sprintf("broken at event %d: ", tc.wantID); !strings.Contains(rep.String(), want) {
				t.Errorf("%q lacks %q", rep.String(), want)
			}
		})
	}
	// Wrapped, it is still a break.
	rep, err := audit.Verify(c, withError(events[:1], fmt.Errorf("reading: %w", &audit.BlockError{ID: 2, Reason: "unreadable: x"})))
	if err != nil || rep.Broken == nil || rep.Broken.ID != 2 {
		t.Fatalf("wrapped BlockError: %+v, %v", rep, err)
	}
}

func TestVerifyIndexMismatch(t *testing.T) {
	genesis := audit.Link{Hash: audit.GenesisHash}
	events := chain(genesis, 4)
	c := headOf(genesis, events)
	mismatch := &audit.BlockError{ID: 1, Reason: "block altered: times", Index: true}
	seqWith := func(evs []audit.Event) iter.Seq2[audit.Event, error] {
		return func(yield func(audit.Event, error) bool) {
			for i, e := range evs {
				if !yield(e, nil) {
					return
				}
				if i == 1 && !yield(audit.Event{}, mismatch) {
					return
				}
			}
		}
	}
	// Alone, the mismatch breaks the chain at the block.
	rep, err := audit.Verify(c, seqWith(events))
	if err != nil || rep.OK || rep.Broken == nil || rep.Broken.ID != 1 || rep.Broken.Reason != mismatch.Reason || rep.Events != 4 {
		t.Fatalf("mismatch alone: %+v (broken %+v), %v", rep, rep.Broken, err)
	}
	// With an event missing, the missing event is reported.
	rep, err = audit.Verify(c, seqWith(events[:3]))
	if err != nil || rep.Broken == nil || rep.Broken.ID != 4 || !strings.Contains(rep.Broken.Reason, "missing") {
		t.Fatalf("mismatch and a missing event: %+v (broken %+v), %v", rep, rep.Broken, err)
	}
}

func TestIndexOnly(t *testing.T) {
	if !audit.IndexOnly(fmt.Errorf("x: %w", &audit.BlockError{ID: 1, Index: true})) {
		t.Error("a wrapped index mismatch is not IndexOnly")
	}
	if audit.IndexOnly(&audit.BlockError{ID: 1}) || audit.IndexOnly(errors.New("x")) || audit.IndexOnly(nil) {
		t.Error("IndexOnly of an unreadable block, another error or nil")
	}
}
