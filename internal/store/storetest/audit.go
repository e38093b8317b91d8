package storetest

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

var auditTests = []test{
	{"append chains events", testAuditAppend},
	{"append is atomic", testAuditAppendAtomic},
	{"empty trail verifies", testAuditEmpty},
	{"query filters", testAuditFilters},
	{"query pages", testAuditPages},
	{"query matches a brute-force filter across blocks", testAuditQueryModel},
	{"purge", testAuditPurge},
	{"purge stops at a newer event", testAuditPurgeOrder},
	{"scan stops early", testAuditScanStop},
}

// ev is an event of actor doing action with outcome.
func ev(actor, action string, outcome audit.Outcome) audit.Event {
	return audit.Event{ActorKind: audit.ActorUser, Actor: actor, Action: action, Outcome: outcome}
}

// verify verifies e's trail and fails unless its verdict is ok.
func (e *env) verify(ok bool) audit.Report {
	e.t.Helper()
	rep, err := audit.VerifyStore(e.ctx, e.s)
	if err != nil {
		e.t.Fatalf("VerifyStore: %v", err)
	}
	if rep.OK != ok {
		e.t.Fatalf("VerifyStore = %+v (broken: %+v), want OK=%v", rep, rep.Broken, ok)
	}
	return rep
}

// ids returns the IDs of events.
func ids(events []audit.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func testAuditAppend(t *testing.T, e *env) {
	first := []audit.Event{
		ev("alice", "artifact.push", audit.Success),
		{ActorKind: audit.ActorAnonymous, Action: "artifact.pull", Outcome: audit.Denied, Reason: "bad\xffbyte\x00",
			ClientIP: "192.0.2.1", UserAgent: "skopeo/1.13", Resource: "repository:p/app", Project: "p",
			Details: map[string]string{"tag": "v1", "digest": "sha256:abc"}},
		ev("bob", "project.create", audit.Failure),
	}
	first[0].Time = t0.Add(-time.Hour)
	ok(t, e.s.AppendAudit(e.ctx, first))
	if got := ids(first); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("IDs after the first append = %v, want [1 2 3]", got)
	}
	if first[0].PrevHash != audit.GenesisHash {
		t.Errorf("first PrevHash = %q, want the genesis hash", first[0].PrevHash)
	}
	for i, got := range first {
		if got.Hash != audit.Hash(got) {
			t.Errorf("event %d: Hash %s is not audit.Hash of it", got.ID, got.Hash)
		}
		if i > 0 && got.PrevHash != first[i-1].Hash {
			t.Errorf("event %d: PrevHash does not link to event %d", got.ID, first[i-1].ID)
		}
	}
	sameTime(t, "explicit Time", first[0].Time, t0.Add(-time.Hour))
	sameTime(t, "stamped Time", first[1].Time, t0)
	if first[1].Reason != "bad\uFFFDbyte\uFFFD" {
		t.Errorf("Reason = %q, want invalid UTF-8 and NUL replaced", first[1].Reason)
	}

	e.clk.Advance(time.Second)
	second := []audit.Event{ev("carol", "user.login", audit.Success), ev("carol", "token.issue", audit.Success)}
	ok(t, e.s.AppendAudit(e.ctx, second))
	if got := ids(second); !slices.Equal(got, []int64{4, 5}) {
		t.Fatalf("IDs after the second append = %v, want [4 5]", got)
	}
	if second[0].PrevHash != first[2].Hash {
		t.Errorf("second batch does not link to the first")
	}

	got, err := e.s.AuditEvents(e.ctx, store.AuditFilter{})
	ok(t, err)
	all := append(slices.Clone(first), second...)
	slices.Reverse(all)
	if len(got) != len(all) {
		t.Fatalf("AuditEvents returned %d events, want %d", len(got), len(all))
	}
	for i := range all {
		if fmt.Sprintf("%+v", got[i]) != fmt.Sprintf("%+v", all[i]) {
			t.Errorf("stored event differs from the appended one:\n got %+v\nwant %+v", got[i], all[i])
		}
		if got[i].Time.Location() != time.UTC {
			t.Errorf("event %d Time location %v, want UTC", got[i].ID, got[i].Time.Location())
		}
	}
	rep := e.verify(true)
	if rep.Events != 5 || rep.FirstID != 1 || rep.LastID != 5 || rep.Chain.Head != (audit.Link{ID: 5, Hash: second[1].Hash}) {
		t.Errorf("report %+v, want 5 events 1-5 and the head at event 5", rep)
	}
	ok(t, e.s.AppendAudit(e.ctx, nil))
}

func testAuditAppendAtomic(t *testing.T, e *env) {
	for _, bad := range []audit.Event{
		{ActorKind: audit.ActorUser, Outcome: audit.Success},
		{ActorKind: "martian", Action: "x.y", Outcome: audit.Success},
		{ActorKind: audit.ActorUser, Action: "x.y", Outcome: "maybe"},
	} {
		batch := []audit.Event{ev("alice", "artifact.push", audit.Success), bad}
		wantCode(t, e.s.AppendAudit(e.ctx, batch), apperr.EINVALID, "", "")
		if batch[0].ID != 0 {
			t.Errorf("a refused batch's events got IDs")
		}
	}
	got, err := e.s.AuditEvents(e.ctx, store.AuditFilter{})
	ok(t, err)
	if len(got) != 0 {
		t.Fatalf("refused batches stored %d events", len(got))
	}
	batch := []audit.Event{ev("alice", "artifact.push", audit.Success)}
	ok(t, e.s.AppendAudit(e.ctx, batch))
	if batch[0].ID != 1 {
		t.Errorf("first stored event has ID %d, want 1", batch[0].ID)
	}
	e.verify(true)
}

func testAuditEmpty(t *testing.T, e *env) {
	rep := e.verify(true)
	genesis := audit.Link{ID: 0, Hash: audit.GenesisHash}
	if rep.Events != 0 || rep.Chain.Head != genesis || rep.Chain.Anchor != genesis {
		t.Errorf("empty trail report %+v", rep)
	}
}

func testAuditFilters(t *testing.T, e *env) {
	mk := func(actor, action, project, resource string, outcome audit.Outcome, at time.Duration) audit.Event {
		return audit.Event{ActorKind: audit.ActorUser, Actor: actor, Action: action, Project: project,
			Resource: resource, Outcome: outcome, Time: t0.Add(at)}
	}
	events := []audit.Event{
		mk("alice", "artifact.push", "p", "repository:p/app@sha256:1", audit.Success, 0),           // 1
		mk("alice", "artifact.pull", "p", "repository:p/app@sha256:1", audit.Success, time.Minute), // 2
		mk("bob", "artifact.push", "q", "repository:q/App@sha256:2", audit.Denied, 2*time.Minute),  // 3
		mk("bob", "artifacts.list", "q", "project:q", audit.Success, 3*time.Minute),                // 4
		mk("carol", "project.create", "", "project:r", audit.Failure, 4*time.Minute),               // 5
		mk("alice", "artifact", "p", "repository:p/x%_y", audit.Success, 5*time.Minute),            // 6
	}
	ok(t, e.s.AppendAudit(e.ctx, events))
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"all", store.AuditFilter{}, []int64{6, 5, 4, 3, 2, 1}},
		{"actor", store.AuditFilter{Actor: "alice"}, []int64{6, 2, 1}},
		{"actor is exact", store.AuditFilter{Actor: "ali"}, nil},
		{"project", store.AuditFilter{Project: "q"}, []int64{4, 3}},
		{"action prefix", store.AuditFilter{Action: "artifact"}, []int64{6, 3, 2, 1}},
		{"action exact", store.AuditFilter{Action: "artifact.push"}, []int64{3, 1}},
		{"action prefix needs a dot", store.AuditFilter{Action: "artifact.pu"}, nil},
		{"outcome", store.AuditFilter{Outcome: audit.Denied}, []int64{3}},
		{"resource substring", store.AuditFilter{Resource: "p/app"}, []int64{2, 1}},
		{"resource is case-sensitive", store.AuditFilter{Resource: "App"}, []int64{3}},
		{"resource wildcards are literal", store.AuditFilter{Resource: "x%_y"}, []int64{6}},
		{"resource % matches only itself", store.AuditFilter{Resource: "%"}, []int64{6}},
		{"since", store.AuditFilter{Since: t0.Add(4 * time.Minute)}, []int64{6, 5}},
		{"until", store.AuditFilter{Until: t0.Add(time.Minute)}, []int64{1}},
		{"since and until", store.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []int64{3, 2}},
		{"combined", store.AuditFilter{Actor: "bob", Action: "artifact", Outcome: audit.Denied}, []int64{3}},
		{"before", store.AuditFilter{Before: 3}, []int64{2, 1}},
		{"limit", store.AuditFilter{N: 2}, []int64{6, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.s.AuditEvents(e.ctx, tc.f)
			ok(t, err)
			if !slices.Equal(ids(got), tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("AuditEvents(%+v) = %v, want %v", tc.f, ids(got), tc.want)
			}
		})
	}
	_, err := e.s.AuditEvents(e.ctx, store.AuditFilter{N: -1})
	wantCode(t, err, apperr.EINVALID, "", "")
	_, err = e.s.AuditEvents(e.ctx, store.AuditFilter{Before: -1})
	wantCode(t, err, apperr.EINVALID, "", "")
}

// testAuditQueryModel appends 1,500 events from a small vocabulary (whose
// values also occur inside other fields, such as actor "al" in resource
// "x2:al" and a project named like an actor) in batches of random sizes,
// so across many blocks, with times out of ID order, and checks 300 random
// filters and their pages against filtering every event in Go.
func testAuditQueryModel(t *testing.T, e *env) {
	r := rand.New(rand.NewPCG(42, 7))
	actors := []string{"al", "alice", "bob", "", "2:al"}
	projects := []string{"p", "q", "al", ""}
	actions := []string{"artifact.push", "artifact.pull", "artifact", "artifacts.list", "user.login"}
	resources := []string{"repository:p/app", "x2:al", "project:q", "5:alice", ""}
	outcomes := []audit.Outcome{audit.Success, audit.Denied, audit.Failure}
	pick := func(vs []string) string { return vs[r.IntN(len(vs))] }
	var all []audit.Event
	for len(all) < 1500 {
		batch := make([]audit.Event, 1+r.IntN(400))
		for i := range batch {
			batch[i] = audit.Event{
				Time:      t0.Add(time.Duration(len(all)+i+r.IntN(200)-100) * time.Second),
				ActorKind: audit.ActorUser, Actor: pick(actors), Action: pick(actions), Project: pick(projects),
				Resource: pick(resources), Outcome: outcomes[r.IntN(len(outcomes))],
			}
			if r.IntN(3) == 0 {
				batch[i].Details = map[string]string{"k": pick(actors)}
			}
		}
		ok(t, e.s.AppendAudit(e.ctx, batch))
		all = append(all, batch...)
	}
	matches := func(f store.AuditFilter, ev audit.Event) bool {
		// Stores compare times at the microsecond precision they keep.
		since, until := f.Since.Truncate(time.Microsecond), f.Until.Truncate(time.Microsecond)
		return (f.Before == 0 || ev.ID < f.Before) &&
			(f.Since.IsZero() || !ev.Time.Before(since)) && (f.Until.IsZero() || ev.Time.Before(until)) &&
			(f.Actor == "" || ev.Actor == f.Actor) && (f.Project == "" || ev.Project == f.Project) &&
			(f.Action == "" || ev.Action == f.Action || strings.HasPrefix(ev.Action, f.Action+".")) &&
			(f.Outcome == "" || ev.Outcome == f.Outcome) && (f.Resource == "" || strings.Contains(ev.Resource, f.Resource))
	}
	for i := range 300 {
		var f store.AuditFilter
		if r.IntN(3) == 0 {
			f.Actor = pick(actors[:3])
		}
		if r.IntN(3) == 0 {
			f.Project = pick(projects[:3])
		}
		if r.IntN(3) == 0 {
			f.Action = pick(actions)
		}
		if r.IntN(4) == 0 {
			f.Outcome = outcomes[r.IntN(len(outcomes))]
		}
		if r.IntN(4) == 0 {
			f.Resource = pick([]string{"al", "p/", "2:", "q"})
		}
		if r.IntN(3) == 0 {
			f.Since = t0.Add(time.Duration(r.IntN(1500)) * time.Second)
		}
		if r.IntN(3) == 0 {
			f.Until = t0.Add(time.Duration(r.IntN(1500)) * time.Second)
		}
		if r.IntN(3) == 0 {
			f.Before = int64(r.IntN(1600))
		}
		f.N = []int{0, 1, 7, 50, 300}[r.IntN(5)]
		var want []audit.Event
		for j := len(all) - 1; j >= 0 && (f.N == 0 || len(want) < f.N); j-- {
			if matches(f, all[j]) {
				want = append(want, audit.Normalize(all[j]))
			}
		}
		got, err := e.s.AuditEvents(e.ctx, f)
		ok(t, err)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("query %d, %+v: got ids %v, want %v", i, f, ids(got), ids(want))
		}
	}
}

func testAuditPages(t *testing.T, e *env) {
	var events []audit.Event
	for i := range 7 {
		events = append(events, ev("u"+strconv.Itoa(i%2), "artifact.pull", audit.Success))
	}
	ok(t, e.s.AppendAudit(e.ctx, events))
	var pages [][]int64
	f := store.AuditFilter{Actor: "u0", N: 2}
	for {
		got, err := e.s.AuditEvents(e.ctx, f)
		ok(t, err)
		if len(got) == 0 {
			break
		}
		pages = append(pages, ids(got))
		f.Before = got[len(got)-1].ID
	}
	if fmt.Sprint(pages) != "[[7 5] [3 1]]" {
		t.Errorf("pages of u0's events = %v, want [[7 5] [3 1]]", pages)
	}
}

func testAuditPurge(t *testing.T, e *env) {
	var events []audit.Event
	for i := range 5 {
		x := ev("alice", "artifact.pull", audit.Success)
		x.Time = t0.Add(time.Duration(i) * time.Hour)
		events = append(events, x)
	}
	ok(t, e.s.AppendAudit(e.ctx, events))

	by := audit.Event{ActorKind: audit.ActorUser, Actor: "admin", ClientIP: "192.0.2.9"}
	n, err := e.s.PurgeAudit(e.ctx, t0.Add(90*time.Minute), &by)
	ok(t, err)
	if n != 2 {
		t.Fatalf("purge removed %d events, want 2", n)
	}
	if by.ID != 6 || by.Action != audit.PurgeAction || by.Outcome != audit.Success || by.Hash != audit.Hash(by) {
		t.Errorf("purge event %+v: want ID 6, action %s, success, hashed", by, audit.PurgeAction)
	}
	wantDetails := map[string]string{
		audit.DetailBefore:  t0.Add(90 * time.Minute).Truncate(time.Microsecond).Format(time.RFC3339Nano),
		audit.DetailDeleted: "2", audit.DetailAnchorID: "2", audit.DetailAnchorHash: events[1].Hash,
	}
	if fmt.Sprint(by.Details) != fmt.Sprint(wantDetails) {
		t.Errorf("purge details %v, want %v", by.Details, wantDetails)
	}
	got, err := e.s.AuditEvents(e.ctx, store.AuditFilter{})
	ok(t, err)
	if !slices.Equal(ids(got), []int64{6, 5, 4, 3}) {
		t.Errorf("after the purge the events are %v, want [6 5 4 3]", ids(got))
	}
	rep := e.verify(true)
	if rep.Chain.Anchor != (audit.Link{ID: 2, Hash: events[1].Hash}) || rep.FirstID != 3 || rep.Events != 4 {
		t.Errorf("report after the purge %+v, want anchored at event 2, events 3-6", rep)
	}

	// Nothing older: nothing removed, the purge still on record.
	again := audit.Event{ActorKind: audit.ActorSystem}
	n, err = e.s.PurgeAudit(e.ctx, t0, &again)
	ok(t, err)
	if n != 0 || again.ID != 7 || again.Details[audit.DetailAnchorID] != "2" {
		t.Errorf("second purge removed %d, event %+v; want 0 removed, event 7 naming anchor 2", n, again)
	}
	e.verify(true)

	// Everything, earlier purge events included.
	all := audit.Event{ActorKind: audit.ActorUser, Actor: "admin"}
	n, err = e.s.PurgeAudit(e.ctx, t0.Add(1000*time.Hour), &all)
	ok(t, err)
	if n != 5 || all.ID != 8 {
		t.Errorf("third purge removed %d (want 5), event ID %d (want 8)", n, all.ID)
	}
	rep = e.verify(true)
	if rep.Events != 1 || rep.Chain.Anchor.ID != 7 {
		t.Errorf("report after purging everything %+v, want one event anchored at 7", rep)
	}

	bad := audit.Event{ActorKind: "nobody"}
	_, err = e.s.PurgeAudit(e.ctx, t0, &bad)
	wantCode(t, err, apperr.EINVALID, "", "")
}

// testAuditPurgeOrder: IDs follow the append order, times need not (clock
// skew between replicas): a purge removes only a run of oldest events, so
// the remaining chain has no hole.
func testAuditPurgeOrder(t *testing.T, e *env) {
	events := []audit.Event{ev("a", "x.y", audit.Success), ev("b", "x.y", audit.Success), ev("c", "x.y", audit.Success)}
	events[0].Time = t0
	events[1].Time = t0.Add(2 * time.Hour)
	events[2].Time = t0
	ok(t, e.s.AppendAudit(e.ctx, events))
	by := audit.Event{ActorKind: audit.ActorSystem}
	n, err := e.s.PurgeAudit(e.ctx, t0.Add(time.Hour), &by)
	ok(t, err)
	if n != 1 {
		t.Errorf("purge removed %d events, want 1 (event 3 is older but follows a newer one)", n)
	}
	e.verify(true)
}

func testAuditScanStop(t *testing.T, e *env) {
	ok(t, e.s.AppendAudit(e.ctx, []audit.Event{ev("a", "x.y", audit.Success), ev("b", "x.y", audit.Success)}))
	seen := 0
	err := e.s.ScanAudit(e.ctx, func(c audit.Chain, events iter.Seq2[audit.Event, error]) error {
		if c.Head.ID != 2 {
			t.Errorf("head %+v, want event 2", c.Head)
		}
		for _, err := range events {
			ok(t, err)
			seen++
			break
		}
		return nil
	})
	ok(t, err)
	if seen != 1 {
		t.Errorf("saw %d events, want 1", seen)
	}
	boom := apperr.Errorf(apperr.ECONFLICT, "boom")
	if err := e.s.ScanAudit(e.ctx, func(audit.Chain, iter.Seq2[audit.Event, error]) error { return boom }); err != boom {
		t.Errorf("ScanAudit returned %v, want fn's error", err)
	}
	// The store stays usable (the snapshot was released).
	ok(t, e.s.AppendAudit(e.ctx, []audit.Event{ev("c", "x.y", audit.Success)}))
	if !strings.Contains(e.verify(true).String(), "intact") {
		t.Error("report summary does not say intact")
	}
}
