package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"iter"
	"slices"
	"strconv"
	"time"
)

// Stored records.
//
// A store keeps events as records: an event's record is its canonical
// encoding (see Canonical) followed by one more field, its Hash (the 64
// lowercase hex characters as stored, written like every other field as
// "len:bytes"). A block is the concatenation of consecutive events'
// records; only the first event's PrevHash is kept beside the block, every
// later event's PrevHash is the Hash of the record before it.
//
// Normalized events hold valid UTF-8 without NUL bytes, so a block of them
// is valid text that a person can read (and an attacker edit) with SQL.

// AppendCanonical appends the canonical encoding of e (see Canonical) to b
// and returns the extended slice. e should be normalized.
func AppendCanonical(b []byte, e Event) []byte {
	b = appendField(b, canonicalVersion)
	b = appendNumField(b, e.ID)
	b = appendNumField(b, e.Time.UnixMicro())
	b = appendField(b, e.ActorKind)
	b = appendField(b, e.Actor)
	b = appendField(b, e.ClientIP)
	b = appendField(b, e.UserAgent)
	b = appendField(b, e.Action)
	b = appendField(b, e.Resource)
	b = appendField(b, e.Project)
	b = appendField(b, string(e.Outcome))
	b = appendField(b, e.Reason)
	b = appendNumField(b, int64(len(e.Details)))
	if len(e.Details) == 0 {
		return b
	}
	var stack [MaxDetailKeys]string
	keys := stack[:0]
	for k := range e.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendField(b, k)
		b = appendField(b, e.Details[k])
	}
	return b
}

// AppendRecord appends e's record (its canonical encoding and its Hash as
// stored, unchecked) to b.
func AppendRecord(b []byte, e Event) []byte {
	return appendField(AppendCanonical(b, e), e.Hash)
}

// appendField appends s as "len:s".
func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// appendNumField appends n in decimal as a field.
func appendNumField(b []byte, n int64) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], n, 10)
	b = strconv.AppendInt(b, int64(len(d)), 10)
	b = append(b, ':')
	return append(b, d...)
}

// RecordEncoder chains events and encodes their records into one buffer,
// reusing its hash state: Append allocates nothing beyond growing b.
// The zero value is ready to use; it is not safe for concurrent use.
type RecordEncoder struct {
	h   hash.Hash
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

// Append sets e.Hash to Hash(*e) (SHA-256 of e.PrevHash followed by e's
// canonical encoding) and appends e's record to b.
func (r *RecordEncoder) Append(b []byte, e *Event) []byte {
	if r.h == nil {
		r.h = sha256.New()
	}
	start := len(b)
	b = AppendCanonical(b, *e)
	r.h.Reset()
	r.h.Write([]byte(e.PrevHash))
	r.h.Write(b[start:])
	hex.Encode(r.hex[:], r.h.Sum(r.sum[:0]))
	b = append(b, "64:"...)
	b = append(b, r.hex[:]...)
	e.Hash = string(b[len(b)-len(r.hex):])
	return b
}

// RecordError is a record that does not decode: Offset is the byte offset
// in the block's data where decoding failed.
type RecordError struct {
	Offset int
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("audit record data at byte %d: %s", e.Offset, e.Reason)
}

// DecodeRecords yields the events whose records data holds, in order:
// ID, Time (UTC, microseconds), every field, Details (nil when there are
// none), Hash, and PrevHash — prevHash for the first event and the Hash of
// the record before it for the others. Strings are substrings of data. It
// checks the encoding only (not hashes, IDs or links; see Verifier). Data
// that does not decode yields, after the events before it, one
// *RecordError naming the offset, and ends; decoding never panics and
// allocates no more than the events it yields.
func DecodeRecords(data, prevHash string) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		d := recordDecoder{data: data}
		for d.off < len(data) {
			e, err := d.next(prevHash, true)
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
			prevHash = e.Hash
		}
	}
}

// AppendDecoded appends the events data's records hold (see DecodeRecords)
// to dst. On a *RecordError it returns dst as it was.
func AppendDecoded(dst []Event, data, prevHash string) ([]Event, error) {
	n := len(dst)
	d := recordDecoder{data: data}
	for d.off < len(data) {
		e, err := d.next(prevHash, true)
		if err != nil {
			clear(dst[n:])
			return dst[:n], err
		}
		dst = append(dst, e)
		prevHash = e.Hash
	}
	return dst, nil
}

// AppendDecodedLazy is AppendDecoded without the Details maps, which cost
// most of decoding: every event's Details is left nil, and offs gets the
// byte offset of each event's record in data, from which DecodeRecordAt
// decodes the whole event (a reader that wants only some events fully
// filters on the rest first). Every record's encoding is checked as by
// AppendDecoded. On a *RecordError it returns dst and offs as they were.
func AppendDecodedLazy(dst []Event, offs []int, data, prevHash string) ([]Event, []int, error) {
	n, m := len(dst), len(offs)
	d := recordDecoder{data: data}
	for d.off < len(data) {
		off := d.off
		e, err := d.next(prevHash, false)
		if err != nil {
			clear(dst[n:])
			return dst[:n], offs[:m], err
		}
		dst = append(dst, e)
		offs = append(offs, off)
		prevHash = e.Hash
	}
	return dst, offs, nil
}

// DecodeRecordAt decodes the one record starting at byte off of data,
// giving the event prevHash as its PrevHash, and its Details only if
// details (see AppendDecodedLazy).
func DecodeRecordAt(data string, off int, prevHash string, details bool) (Event, error) {
	if off < 0 || off > len(data) {
		return Event{}, &RecordError{Offset: off, Reason: "offset outside the data"}
	}
	d := recordDecoder{data: data, off: off}
	return d.next(prevHash, details)
}

// RecordSpan is where one record lies in a block's data.
type RecordSpan struct {
	// Start and End are the record's byte range.
	Start, End int
	// Hash is the record's hash field: the next record's PrevHash.
	Hash string
}

// fieldsBeforeDetails is how many fields a record has before its detail
// pairs: the version tag, ID, time, nine strings and the detail count.
const fieldsBeforeDetails = 13

// AppendRecordSpans appends the span of each record in data to dst. It
// reads only the length prefixes (and the detail count), so it is several
// times faster than decoding; the fields themselves are checked when the
// records are decoded. An encoding it cannot follow is a *RecordError, and
// dst is returned as it was.
func AppendRecordSpans(dst []RecordSpan, data string) ([]RecordSpan, error) {
	n := len(dst)
	d := recordDecoder{data: data}
	for d.off < len(data) {
		start := d.off
		var count string
		for i := range fieldsBeforeDetails {
			f, err := d.field("field")
			if err != nil {
				return dst[:n], err
			}
			if i == 0 && f != canonicalVersion {
				return dst[:n], d.fail(start, "version tag %q is not %q", f, canonicalVersion)
			}
			count = f
		}
		pairs, err := strconv.Atoi(count)
		if err != nil || pairs < 0 || pairs > MaxDetailKeys {
			return dst[:n], d.fail(d.off, "detail count %q is not between 0 and %d", count, MaxDetailKeys)
		}
		for range 2 * pairs {
			if _, err := d.field("detail"); err != nil {
				return dst[:n], err
			}
		}
		h, err := d.field("hash")
		if err != nil {
			return dst[:n], err
		}
		dst = append(dst, RecordSpan{Start: start, End: d.off, Hash: h})
	}
	return dst, nil
}

// recordDecoder reads fields from data starting at off.
type recordDecoder struct {
	data string
	off  int
}

// maxFieldDigits bounds a field's length prefix: data is far shorter than
// 10^12 bytes.
const maxFieldDigits = 12

// field reads one "len:bytes" field; what names it in errors.
func (d *recordDecoder) field(what string) (string, error) {
	start := d.off
	i := start
	for i < len(d.data) && i-start <= maxFieldDigits && d.data[i] >= '0' && d.data[i] <= '9' {
		i++
	}
	switch {
	case i == start:
		return "", d.fail(start, "%s: no length prefix", what)
	case i-start > maxFieldDigits:
		return "", d.fail(start, "%s: length prefix too long", what)
	case i-start > 1 && d.data[start] == '0':
		return "", d.fail(start, "%s: length prefix %q has a leading zero", what, d.data[start:i])
	case i == len(d.data) || d.data[i] != ':':
		return "", d.fail(i, "%s: no ':' after the length prefix", what)
	}
	n, _ := strconv.Atoi(d.data[start:i]) // at most 12 digits: fits
	i++
	if n > len(d.data)-i {
		return "", d.fail(start, "%s: length %d runs past the end of the data (%d bytes left)", what, n, len(d.data)-i)
	}
	d.off = i + n
	return d.data[i:d.off], nil
}

// num reads a field holding a canonical decimal int64.
func (d *recordDecoder) num(what string) (int64, error) {
	start := d.off
	s, err := d.field(what)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || !isCanonicalInt(s) {
		return 0, d.fail(start, "%s: %q is not a decimal integer", what, s)
	}
	return n, nil
}

// isCanonicalInt reports whether s is written as strconv.FormatInt writes
// an integer: an optional '-', then digits without a leading zero ("0"
// itself aside, and no "-0").
func isCanonicalInt(s string) bool {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" || (digits[0] == '0' && (len(digits) > 1 || len(s) > 1)) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

func (d *recordDecoder) fail(off int, format string, args ...any) error {
	return &RecordError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// next decodes the record at d.off, leaving Details nil unless details.
func (d *recordDecoder) next(prevHash string, details bool) (Event, error) {
	start := d.off
	var e Event
	version, err := d.field("version tag")
	if err != nil {
		return e, err
	}
	if version != canonicalVersion {
		return e, d.fail(start, "version tag %q is not %q", version, canonicalVersion)
	}
	if e.ID, err = d.num("id"); err != nil {
		return e, err
	}
	micros, err := d.num("time")
	if err != nil {
		return e, err
	}
	e.Time = time.UnixMicro(micros).UTC()
	if e.ActorKind, err = d.field("actor kind"); err != nil {
		return e, err
	}
	if e.Actor, err = d.field("actor"); err != nil {
		return e, err
	}
	if e.ClientIP, err = d.field("client IP"); err != nil {
		return e, err
	}
	if e.UserAgent, err = d.field("user agent"); err != nil {
		return e, err
	}
	if e.Action, err = d.field("action"); err != nil {
		return e, err
	}
	if e.Resource, err = d.field("resource"); err != nil {
		return e, err
	}
	if e.Project, err = d.field("project"); err != nil {
		return e, err
	}
	outcome, err := d.field("outcome")
	if err != nil {
		return e, err
	}
	e.Outcome = Outcome(outcome)
	if e.Reason, err = d.field("reason"); err != nil {
		return e, err
	}
	countAt := d.off
	count, err := d.num("detail count")
	if err != nil {
		return e, err
	}
	if count < 0 || count > MaxDetailKeys {
		return e, d.fail(countAt, "detail count %d is not between 0 and %d", count, MaxDetailKeys)
	}
	if count > 0 && details {
		e.Details = make(map[string]string, count)
	}
	if count > 0 {
		prev := ""
		for i := range count {
			keyAt := d.off
			k, err := d.field("detail key")
			if err != nil {
				return e, err
			}
			if i > 0 && k <= prev {
				return e, d.fail(keyAt, "detail key %q does not follow %q in byte order", k, prev)
			}
			v, err := d.field("detail value")
			if err != nil {
				return e, err
			}
			if details {
				e.Details[k] = v
			}
			prev = k
		}
	}
	if e.Hash, err = d.field("hash"); err != nil {
		return e, err
	}
	e.PrevHash = prevHash
	return e, nil
}
