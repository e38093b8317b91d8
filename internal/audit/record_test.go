package audit_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/audit"
)

// chainBlock chains events after prev with a RecordEncoder and returns the
// block's data and the events as stored.
func chainBlock(prev string, events []audit.Event) (string, []audit.Event) {
	var enc audit.RecordEncoder
	var b []byte
	out := make([]audit.Event, len(events))
	for i, e := range events {
		e = audit.Normalize(e)
		e.PrevHash = prev
		b = enc.Append(b, &e)
		prev = e.Hash
		out[i] = e
	}
	return string(b), out
}

// randomEvents returns n normalized-to-be events with varied fields.
func randomEvents(r *rand.Rand, n int) []audit.Event {
	words := []string{"", "alice", "p", "artifact.pull", "ü€😀", "a:b", "12:x", "\x00nul", "\xffbad", strings.Repeat("z", 1500)}
	pick := func() string { return words[r.IntN(len(words))] }
	out := make([]audit.Event, n)
	for i := range out {
		e := audit.Event{
			ID: int64(i + 1), Time: time.UnixMicro(r.Int64N(4e15) - 1e15).Add(time.Duration(r.IntN(1000))),
			ActorKind: pick(), Actor: pick(), ClientIP: pick(), UserAgent: pick(), Action: pick(),
			Resource: pick(), Project: pick(), Outcome: audit.Outcome(pick()), Reason: pick(),
		}
		if k := r.IntN(4); k > 0 {
			e.Details = map[string]string{}
			for range k * 30 {
				e.Details[pick()+fmt.Sprint(r.IntN(50))] = pick()
			}
		}
		out[i] = e
	}
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		prev := audit.GenesisHash
		if round%2 == 1 {
			prev = strings.Repeat("ab", 32)
		}
		data, stored := chainBlock(prev, randomEvents(r, 1+r.IntN(20)))
		got, err := audit.AppendDecoded(nil, data, prev)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !reflect.DeepEqual(got, stored) {
			t.Fatalf("round %d: decoded events differ from the normalized, chained ones:\n%+v\n%+v", round, got, stored)
		}
		var again []byte
		for _, e := range got {
			if e.Hash != audit.Hash(e) {
				t.Fatalf("round %d: event %d's stored hash is not Hash of it", round, e.ID)
			}
			again = audit.AppendRecord(again, e)
		}
		if string(again) != data {
			t.Fatalf("round %d: re-encoding changed the data", round)
		}
	}
}

// TestRecordGolden pins the record layout: the canonical encoding and the
// hash as one more field.
func TestRecordGolden(t *testing.T) {
	e := sample()
	e.Hash = audit.Hash(e)
	want := string(audit.Canonical(e)) + "64:" + e.Hash
	var enc audit.RecordEncoder
	got := e
	got.Hash = ""
	if b := enc.Append(nil, &got); string(b) != want || got.Hash != e.Hash {
		t.Fatalf("RecordEncoder.Append = %s (hash %s), want %s", b, got.Hash, want)
	}
	if b := audit.AppendRecord([]byte("x"), e); string(b) != "x"+want {
		t.Fatalf("AppendRecord = %s", b)
	}
}

func TestDecodeRecordsEmptyAndIterator(t *testing.T) {
	if got, err := audit.AppendDecoded(nil, "", audit.GenesisHash); err != nil || len(got) != 0 {
		t.Fatalf("empty data: %v, %v", got, err)
	}
	data, stored := chainBlock(audit.GenesisHash, randomEvents(rand.New(rand.NewPCG(3, 4)), 5))
	var n int
	for e, err := range audit.DecodeRecords(data, audit.GenesisHash) {
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != stored[n].ID || e.PrevHash != stored[n].PrevHash {
			t.Fatalf("event %d: %+v", n, e)
		}
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("stopped after %d", n)
	}
}

func TestDecodeRecordsErrors(t *testing.T) {
	e := sample()
	e.Hash = audit.Hash(e)
	good := string(audit.AppendRecord(nil, e))
	for _, tc := range []struct {
		name, data string
		offset     int
		reason     string
	}{
		{"no length", "x", 0, "no length prefix"},
		{"no colon", "16x", 2, "no ':'"},
		{"truncated", good[:len(good)-3], len(good) - 64 - 3, "runs past the end"},
		{"leading zero", "016:customs.audit.v1", 0, "leading zero"},
		{"huge length", "99999999999:x", 0, "runs past the end"},
		{"too many digits", "9999999999999999:x", 0, "too long"},
		{"wrong version", strings.Replace(good, "customs.audit.v1", "customs.audit.v2", 1), 0, "version tag"},
		{"bad id", strings.Replace(good, "1:7", "1:x", 1), 19, "not a decimal integer"},
		{"id with plus", strings.Replace(good, "1:7", "2:+7", 1), 19, "not a decimal integer"},
		{"too many details", strings.Replace(good, "0:1:2", "0:2:99", 1), len("16:customs.audit.v11:716:17726007671234564:user5:alice9:192.0.2.111:skopeo/1.1313:artifact.push26:repository:p/app@sha256:ab1:p7:success0:"), "detail count 99"},
		{"keys out of order", strings.Replace(strings.Replace(good, "6:digest", "6:zigest", 1), "3:tag", "3:tag", 1), -1, "byte order"},
		{"second record cut", good + good[:40], len(good) + 19 + 3, "runs past the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := audit.AppendDecoded(nil, tc.data, audit.GenesisHash)
			var re *audit.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (%d events), want a *RecordError", err, len(got))
			}
			if len(got) != 0 {
				t.Errorf("%d events returned with the error", len(got))
			}
			if (tc.offset >= 0 && re.Offset != tc.offset) || !strings.Contains(re.Error(), tc.reason) {
				t.Errorf("err = %v (offset %d), want offset %d and %q", err, re.Offset, tc.offset, tc.reason)
			}
		})
	}
}

// FuzzDecodeRecords checks that decoding never panics, that what decodes
// re-encodes to the same bytes, and that errors carry an offset inside the
// data.
func FuzzDecodeRecords(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 4} {
		data, _ := chainBlock(audit.GenesisHash, randomEvents(r, n))
		f.Add(data)
	}
	e := sample()
	e.Hash = audit.Hash(e)
	good := string(audit.AppendRecord(nil, e))
	f.Add(good)
	f.Add(good[:50])
	f.Add("")
	f.Add("16:customs.audit.v11:01:0")
	f.Fuzz(func(t *testing.T, data string) {
		events, err := audit.AppendDecoded(nil, data, audit.GenesisHash)
		if err != nil {
			var re *audit.RecordError
			if !errors.As(err, &re) || re.Offset < 0 || re.Offset > len(data) {
				t.Fatalf("err = %#v", err)
			}
			return
		}
		var again []byte
		prev := audit.GenesisHash
		for _, e := range events {
			if e.PrevHash != prev {
				t.Fatalf("event %d: PrevHash %q, want %q", e.ID, e.PrevHash, prev)
			}
			prev = e.Hash
			again = audit.AppendRecord(again, e)
		}
		if string(again) != data {
			t.Fatalf("re-encoded\n%q\nwant\n%q", again, data)
		}
	})
}

// benchBlock is the data of a block of 1,000 pulls by one developer, for
// the decoding benchmarks.
func benchBlock() string {
	events := make([]audit.Event, 1000)
	for i := range events {
		events[i] = audit.Event{
			ID: int64(i + 1), Time: time.Unix(1_700_000_000, int64(i)*1000), ActorKind: audit.ActorUser, Actor: "developer",
			ClientIP: "192.0.2.10", UserAgent: "containers/5.29.2", Action: "artifact.pull",
			Resource: fmt.Sprintf("repository:library/debian@sha256:%064x", i), Project: "library",
			Outcome: audit.Success, Details: map[string]string{"tag": "bookworm"},
		}
	}
	data, _ := chainBlock(audit.GenesisHash, events)
	return data
}

func BenchmarkDecodeRecords(b *testing.B) {
	data := benchBlock()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var dst []audit.Event
	for b.Loop() {
		var err error
		if dst, err = audit.AppendDecoded(dst[:0], data, audit.GenesisHash); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendDecodedLazy(t *testing.T) {
	data, stored := chainBlock(audit.GenesisHash, randomEvents(rand.New(rand.NewPCG(7, 8)), 30))
	heads, offs, err := audit.AppendDecodedLazy(nil, nil, data, audit.GenesisHash)
	if err != nil || len(heads) != len(stored) || len(offs) != len(stored) {
		t.Fatalf("%d events, %d offsets, %v", len(heads), len(offs), err)
	}
	for i, h := range heads {
		want := stored[i]
		if h.Details != nil {
			t.Fatalf("event %d: lazy decoding filled Details", h.ID)
		}
		want.Details = nil
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("event %d: %+v, want %+v", i, h, want)
		}
		full, err := audit.DecodeRecordAt(data, offs[i], h.PrevHash, true)
		if err != nil || !reflect.DeepEqual(full, stored[i]) {
			t.Fatalf("DecodeRecordAt(%d) = %+v, %v; want %+v", offs[i], full, err, stored[i])
		}
	}
	if _, _, err := audit.AppendDecodedLazy(nil, nil, data[:len(data)-1], audit.GenesisHash); err == nil {
		t.Fatal("a cut block decoded lazily")
	}
	if _, err := audit.DecodeRecordAt(data, len(data)+1, "", true); err == nil {
		t.Fatal("DecodeRecordAt past the end")
	}
}

func BenchmarkDecodeRecordsLazy(b *testing.B) {
	data := benchBlock()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var dst []audit.Event
	var offs []int
	for b.Loop() {
		var err error
		if dst, offs, err = audit.AppendDecodedLazy(dst[:0], offs[:0], data, audit.GenesisHash); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendRecordSpans(t *testing.T) {
	data, stored := chainBlock(audit.GenesisHash, randomEvents(rand.New(rand.NewPCG(9, 10)), 25))
	spans, err := audit.AppendRecordSpans(nil, data)
	if err != nil || len(spans) != len(stored) {
		t.Fatalf("%d spans, %v", len(spans), err)
	}
	prev := audit.GenesisHash
	for i, sp := range spans {
		if i > 0 && sp.Start != spans[i-1].End || sp.Hash != stored[i].Hash {
			t.Fatalf("span %d: %+v", i, sp)
		}
		e, err := audit.DecodeRecordAt(data, sp.Start, prev, true)
		if err != nil || !reflect.DeepEqual(e, stored[i]) {
			t.Fatalf("span %d decodes to %+v, %v", i, e, err)
		}
		prev = sp.Hash
	}
	if spans[len(spans)-1].End != len(data) {
		t.Fatalf("spans end at %d of %d", spans[len(spans)-1].End, len(data))
	}
	for _, bad := range []string{data[:len(data)-1], "x" + data, strings.Replace(data, "customs.audit.v1", "customs.audit.v2", 1)} {
		if got, err := audit.AppendRecordSpans(nil, bad); err == nil || len(got) != 0 {
			t.Errorf("corrupt data: %d spans, %v", len(got), err)
		}
	}
}

// FuzzRecordSpans checks that spans never panic and that, where data
// decodes, they agree with the decoder.
func FuzzRecordSpans(f *testing.F) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 3} {
		data, _ := chainBlock(audit.GenesisHash, randomEvents(r, n))
		f.Add(data)
	}
	f.Add("16:customs.audit.v11:11:0")
	f.Fuzz(func(t *testing.T, data string) {
		spans, err := audit.AppendRecordSpans(nil, data)
		events, derr := audit.AppendDecoded(nil, data, audit.GenesisHash)
		if derr == nil {
			if err != nil || len(spans) != len(events) {
				t.Fatalf("decodes to %d events but spans: %d, %v", len(events), len(spans), err)
			}
			for i, e := range events {
				if spans[i].Hash != e.Hash {
					t.Fatalf("span %d hash %q, event's %q", i, spans[i].Hash, e.Hash)
				}
			}
		}
		if err == nil && len(spans) > 0 && spans[len(spans)-1].End != len(data) {
			t.Fatalf("spans end at %d of %d", spans[len(spans)-1].End, len(data))
		}
	})
}

func BenchmarkRecordSpans(b *testing.B) {
	data := benchBlock()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var spans []audit.RecordSpan
	for b.Loop() {
		var err error
		if spans, err = audit.AppendRecordSpans(spans[:0], data); err != nil {
			b.Fatal(err)
		}
	}
}
