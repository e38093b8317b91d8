package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The hash chain.
//
// Every stored event carries PrevHash, the Hash of the event stored before
// it, and its own Hash:
//
//	Hash = lowercase hex( SHA-256( PrevHash || Canonical(event) ) )
//
// where PrevHash is the 64 ASCII hex characters of the previous hash
// (GenesisHash for the first event ever stored) and Canonical is this
// encoding of every other field, in this order, each field written as its
// length in bytes in decimal, a colon, and its bytes:
//
//	"customs.audit.v1"
//	ID                        decimal
//	Time                      Unix microseconds (UTC), decimal
//	ActorKind, Actor, ClientIP, UserAgent, Action, Resource, Project,
//	Outcome, Reason           the strings as stored
//	len(Details)              decimal
//	key, value                for each detail, keys in byte order
//
// Length prefixes make the encoding injective (no two events encode alike,
// whatever bytes their fields hold), and nothing in it depends on map order,
// float formatting or time zones. The ID is hashed, so renumbering or
// reordering events breaks the chain; stores assign IDs without gaps, so a
// deleted event shows as a missing ID as well as a broken link.

// GenesisHash is the PrevHash of the first event of a chain.
var GenesisHash = strings.Repeat("0", 64)

// canonicalVersion names this encoding; a change of encoding changes it.
const canonicalVersion = "customs.audit.v1"

// Canonical returns the canonical encoding of e's fields other than
// PrevHash and Hash (see the package's chain documentation). e should be
// normalized (see Normalize) so that it encodes as it is stored.
func Canonical(e Event) []byte {
	return AppendCanonical(make([]byte, 0, 256), e)
}

// Hash returns the hash e must carry: SHA-256 over e.PrevHash followed by
// Canonical(e), in lowercase hex.
func Hash(e Event) string {
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(Canonical(e))
	return hex.EncodeToString(h.Sum(nil))
}

// Link is a position in the chain: an event's ID and Hash.
type Link struct {
	ID   int64  `json:"id"`
	Hash string `json:"hash"`
}

// Chain is what a store records about its chain besides the events.
type Chain struct {
	// Anchor is the last event removed by a purge (ID 0 and GenesisHash
	// when none was): the first stored event follows it.
	Anchor Link `json:"anchor"`
	// Head is the last event appended; equal to Anchor when no event is
	// stored after it.
	Head Link `json:"head"`
}

// Field size limits applied by Normalize, in bytes.
const (
	MaxFieldBytes   = 1024 // actor, client IP, user agent, action, resource, project
	MaxReasonBytes  = 4096 // reason and each detail value
	MaxDetailKeys   = 64   // details beyond this many (in key order) are dropped
	MaxDetailKeyLen = 128  // detail key
)

// Normalize returns e as a store keeps it: Time in UTC truncated to
// microseconds; every string valid UTF-8 without NUL bytes (invalid bytes and
// NULs become U+FFFD) and cut to its size limit; empty Details as nil.
// Normalizing twice changes nothing.
func Normalize(e Event) Event {
	if !e.Time.IsZero() {
		e.Time = e.Time.UTC().Truncate(time.Microsecond)
	}
	e.ActorKind = clean(e.ActorKind, MaxFieldBytes)
	e.Actor = clean(e.Actor, MaxFieldBytes)
	e.ClientIP = clean(e.ClientIP, MaxFieldBytes)
	e.UserAgent = clean(e.UserAgent, MaxFieldBytes)
	e.Action = clean(e.Action, MaxFieldBytes)
	e.Resource = clean(e.Resource, MaxFieldBytes)
	e.Project = clean(e.Project, MaxFieldBytes)
	e.Outcome = Outcome(clean(string(e.Outcome), MaxFieldBytes))
	e.Reason = clean(e.Reason, MaxReasonBytes)
	if len(e.Details) == 0 {
		e.Details = nil
		return e
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	d := make(map[string]string, min(len(keys), MaxDetailKeys))
	for _, k := range keys {
		if len(d) == MaxDetailKeys {
			break
		}
		// Cleaning may map two keys to one; the first in byte order wins.
		ck := clean(k, MaxDetailKeyLen)
		if _, dup := d[ck]; !dup {
			d[ck] = clean(e.Details[k], MaxReasonBytes)
		}
	}
	e.Details = d
	return e
}

// IsNormal reports whether Normalize would return e unchanged (its Details
// map aside, which Normalize copies): a store can then skip the copy for
// events that the Writer has already normalized.
func IsNormal(e Event) bool {
	if !e.Time.IsZero() && (e.Time.Location() != time.UTC || e.Time.Nanosecond()%1000 != 0) {
		return false
	}
	if !isClean(e.ActorKind, MaxFieldBytes) || !isClean(e.Actor, MaxFieldBytes) || !isClean(e.ClientIP, MaxFieldBytes) ||
		!isClean(e.UserAgent, MaxFieldBytes) || !isClean(e.Action, MaxFieldBytes) || !isClean(e.Resource, MaxFieldBytes) ||
		!isClean(e.Project, MaxFieldBytes) || !isClean(string(e.Outcome), MaxFieldBytes) || !isClean(e.Reason, MaxReasonBytes) {
		return false
	}
	if e.Details == nil {
		return true
	}
	if len(e.Details) == 0 || len(e.Details) > MaxDetailKeys || !cleanKeys(e.Details) {
		return false
	}
	for _, v := range e.Details {
		if !isClean(v, MaxReasonBytes) {
			return false
		}
	}
	return true
}

// cleanKeys reports whether every key of d is clean (see isClean) as a
// detail key.
func cleanKeys(d map[string]string) bool {
	for k := range d {
		if !isClean(k, MaxDetailKeyLen) {
			return false
		}
	}
	return true
}

// isClean reports whether clean(s, limit) == s.
func isClean(s string, limit int) bool {
	return len(s) <= limit && strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// clean makes s valid UTF-8 without NULs, at most limit bytes long (cut at
// a character boundary).
func clean(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// Actor kinds.
const (
	ActorUser      = "user"
	ActorRobot     = "robot"
	ActorAnonymous = "anonymous"
	ActorSystem    = "system"
)

// Validate returns an error naming the problem if e cannot be stored: an
// empty Action, or an ActorKind or Outcome that is not one of the
// constants. A zero Time is fine: stores stamp it.
func Validate(e Event) error {
	switch {
	case e.Action == "":
		return fmt.Errorf("audit event has no action")
	case e.ActorKind != ActorUser && e.ActorKind != ActorRobot && e.ActorKind != ActorAnonymous && e.ActorKind != ActorSystem:
		return fmt.Errorf("audit event %s: actor kind %q is not user, robot, anonymous or system", e.Action, e.ActorKind)
	case e.Outcome != Success && e.Outcome != Failure && e.Outcome != Denied:
		return fmt.Errorf("audit event %s: outcome %q is not success, failure or denied", e.Action, e.Outcome)
	}
	return nil
}
