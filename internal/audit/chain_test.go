package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/audit"
)

// sample is a fully populated event.
func sample() audit.Event {
	return audit.Event{
		ID:        7,
		Time:      time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC),
		ActorKind: audit.ActorUser, Actor: "alice", ClientIP: "192.0.2.1", UserAgent: "skopeo/1.13",
		Action: "artifact.push", Resource: "repository:p/app@sha256:ab", Project: "p",
		Outcome: audit.Success, Reason: "",
		Details:  map[string]string{"tag": "v1", "digest": "sha256:ab"},
		PrevHash: audit.GenesisHash,
	}
}

// TestCanonicalGolden pins the encoding: a change to it would make every
// stored chain fail verification, so it must be deliberate (and versioned).
func TestCanonicalGolden(t *testing.T) {
	e := sample()
	const want = "16:customs.audit.v11:716:17726007671234564:user5:alice9:192.0.2.111:skopeo/1.1313:artifact.push" +
		"26:repository:p/app@sha256:ab1:p7:success0:1:26:digest9:sha256:ab3:tag2:v1"
	if got := string(audit.Canonical(e)); got != want {
		t.Fatalf("Canonical =\n%s\nwant\n%s", got, want)
	}
	sum := sha256.Sum256([]byte(audit.GenesisHash + want))
	if got := audit.Hash(e); got != hex.EncodeToString(sum[:]) {
		t.Errorf("Hash = %s, want SHA-256(prevHash || canonical) = %x", got, sum)
	}
}

func TestHashCoversEveryField(t *testing.T) {
	base := audit.Hash(sample())
	for _, tc := range []struct {
		name string
		edit func(e *audit.Event)
	}{
		{"id", func(e *audit.Event) { e.ID++ }},
		{"time", func(e *audit.Event) { e.Time = e.Time.Add(time.Microsecond) }},
		{"actor kind", func(e *audit.Event) { e.ActorKind = audit.ActorRobot }},
		{"actor", func(e *audit.Event) { e.Actor = "mallory" }},
		{"client ip", func(e *audit.Event) { e.ClientIP = "192.0.2.2" }},
		{"user agent", func(e *audit.Event) { e.UserAgent = "crane" }},
		{"action", func(e *audit.Event) { e.Action = "artifact.delete" }},
		{"resource", func(e *audit.Event) { e.Resource += "x" }},
		{"project", func(e *audit.Event) { e.Project = "q" }},
		{"outcome", func(e *audit.Event) { e.Outcome = audit.Denied }},
		{"reason", func(e *audit.Event) { e.Reason = "because" }},
		{"detail value", func(e *audit.Event) { e.Details["tag"] = "v2" }},
		{"detail key", func(e *audit.Event) { e.Details["tags"] = e.Details["tag"]; delete(e.Details, "tag") }},
		{"detail added", func(e *audit.Event) { e.Details["x"] = "" }},
		{"details removed", func(e *audit.Event) { e.Details = nil }},
		{"prev hash", func(e *audit.Event) { e.PrevHash = strings.Repeat("1", 64) }},
		{"field boundary moved", func(e *audit.Event) { e.Actor, e.ClientIP = "alice9:192.0.2.1", "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sample()
			tc.edit(&e)
			if audit.Hash(e) == base {
				t.Errorf("changing the %s does not change the hash", tc.name)
			}
		})
	}
	e := sample()
	e.Hash = "whatever"
	if audit.Hash(e) != base {
		t.Error("the stored Hash field must not feed its own hash")
	}
}

func TestCanonicalIgnoresMapOrderAndZone(t *testing.T) {
	a := sample()
	b := sample()
	b.Details = map[string]string{}
	b.Details["tag"] = "v1"
	b.Details["digest"] = "sha256:ab"
	b.Time = a.Time.In(time.FixedZone("X", 3600))
	for range 20 {
		if audit.Hash(a) != audit.Hash(b) {
			t.Fatal("equal events hash differently")
		}
	}
	empty, none := sample(), sample()
	empty.Details, none.Details = map[string]string{}, nil
	if audit.Hash(empty) != audit.Hash(none) {
		t.Error("empty and nil details hash differently (stores keep both as none)")
	}
}

func TestNormalize(t *testing.T) {
	long := strings.Repeat("é", audit.MaxFieldBytes) // 2 bytes each
	details := map[string]string{}
	for i := range audit.MaxDetailKeys + 5 {
		details[string(rune('A'+i))] = "v"
	}
	for _, tc := range []struct {
		name  string
		in    audit.Event
		check func(t *testing.T, e audit.Event)
	}{
		{"time to UTC microseconds", audit.Event{Time: time.Date(2026, 1, 1, 1, 0, 0, 999, time.FixedZone("X", 3600))},
			func(t *testing.T, e audit.Event) {
				if !e.Time.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || e.Time.Location() != time.UTC {
					t.Errorf("Time = %v", e.Time)
				}
			}},
		{"zero time stays zero", audit.Event{}, func(t *testing.T, e audit.Event) {
			if !e.Time.IsZero() {
				t.Errorf("Time = %v", e.Time)
			}
		}},
		{"invalid UTF-8 and NUL", audit.Event{UserAgent: "a\xff\x00b", Details: map[string]string{"k\x00": "v\xfe"}},
			func(t *testing.T, e audit.Event) {
				if e.UserAgent != "a\uFFFD\uFFFDb" || e.Details["k\uFFFD"] != "v\uFFFD" {
					t.Errorf("UserAgent %q, details %q", e.UserAgent, e.Details)
				}
			}},
		{"long field cut at a character", audit.Event{Resource: long}, func(t *testing.T, e audit.Event) {
			if len(e.Resource) != audit.MaxFieldBytes || !strings.HasSuffix(e.Resource, "é") {
				t.Errorf("Resource cut to %d bytes, ending %q", len(e.Resource), e.Resource[len(e.Resource)-2:])
			}
		}},
		{"odd cut backs off", audit.Event{Resource: "x" + long}, func(t *testing.T, e audit.Event) {
			if len(e.Resource) != audit.MaxFieldBytes-1 {
				t.Errorf("Resource cut to %d bytes, want %d", len(e.Resource), audit.MaxFieldBytes-1)
			}
		}},
		{"too many details", audit.Event{Details: details}, func(t *testing.T, e audit.Event) {
			if len(e.Details) != audit.MaxDetailKeys || e.Details["A"] != "v" {
				t.Errorf("%d details kept", len(e.Details))
			}
		}},
		{"empty details become nil", audit.Event{Details: map[string]string{}}, func(t *testing.T, e audit.Event) {
			if e.Details != nil {
				t.Errorf("Details = %#v", e.Details)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			once := audit.Normalize(tc.in)
			tc.check(t, once)
			if twice := audit.Normalize(once); audit.Hash(twice) != audit.Hash(once) {
				t.Error("normalizing twice changed the event")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := audit.Event{ActorKind: audit.ActorAnonymous, Action: "artifact.pull", Outcome: audit.Denied}
	if err := audit.Validate(ok); err != nil {
		t.Errorf("valid event: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(e *audit.Event)
		want string
	}{
		{"no action", func(e *audit.Event) { e.Action = "" }, "no action"},
		{"unknown actor kind", func(e *audit.Event) { e.ActorKind = "alien" }, "actor kind"},
		{"no actor kind", func(e *audit.Event) { e.ActorKind = "" }, "actor kind"},
		{"unknown outcome", func(e *audit.Event) { e.Outcome = "meh" }, "outcome"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.edit(&e)
			err := audit.Validate(e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// FuzzCanonicalInjective checks that two events encode alike only if they
// are alike: the length prefixes leave no way to shift bytes between fields.
func FuzzCanonicalInjective(f *testing.F) {
	f.Add("alice", "192.0.2.1", "k", "v", "alice9:192.0.2.1", "", "k", "v")
	f.Add("a", "b", "", "", "ab", "", "", "")
	f.Add("x", "", "k1:", "v", "x", "", "k", "1:v")
	f.Fuzz(func(t *testing.T, actor1, ip1, k1, v1, actor2, ip2, k2, v2 string) {
		mk := func(actor, ip, k, v string) audit.Event {
			e := sample()
			e.Actor, e.ClientIP = actor, ip
			e.Details = map[string]string{k: v}
			return e
		}
		a, b := mk(actor1, ip1, k1, v1), mk(actor2, ip2, k2, v2)
		same := actor1 == actor2 && ip1 == ip2 && k1 == k2 && v1 == v2
		if enc := string(audit.Canonical(a)) == string(audit.Canonical(b)); enc != same {
			t.Errorf("events equal=%v but encodings equal=%v", same, enc)
		}
	})
}

// FuzzIsNormal checks IsNormal against Normalize: an event it calls normal
// is one Normalize leaves as it is, and whatever Normalize returns is normal.
func FuzzIsNormal(f *testing.F) {
	f.Add("alice", "containers/5.29", "k", "v", int64(1_700_000_000_000_000_000), false)
	f.Add("a\xffb", "ua\x00", "k\x00", "v", int64(1), true)
	f.Add(strings.Repeat("é", audit.MaxFieldBytes), "", strings.Repeat("k", audit.MaxDetailKeyLen+1), "", int64(999), false)
	f.Add("", "", "", "\xfe", int64(0), false)
	f.Fuzz(func(t *testing.T, actor, ua, k, v string, nanos int64, local bool) {
		e := sample()
		e.Actor, e.UserAgent = actor, ua
		e.Details = map[string]string{k: v, "size": "12"}
		e.Time = time.Unix(0, nanos).UTC()
		if local {
			e.Time = e.Time.In(time.FixedZone("X", 3600))
		}
		n := audit.Normalize(e)
		if !audit.IsNormal(n) {
			t.Errorf("Normalize returned an event IsNormal rejects: %+v", n)
		}
		if audit.IsNormal(e) && (!reflect.DeepEqual(n, e) || n.Time.Location() != e.Time.Location()) {
			t.Errorf("IsNormal accepted an event Normalize changes:\n%+v\n%+v", e, n)
		}
	})
}
