package fs

import (
	"crypto/rand"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/opencontainers/go-digest"
)

// idLen is the length of an upload id: 128 random bits in lowercase hex.
const idLen = 32

// maxStateSize bounds the state file read back from disk.
const maxStateSize = 4096

// newID returns a fresh random upload id.
func newID() string {
	var b [idLen / 2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id has the exact form newID produces, so that it
// is safe to use as a single path element.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// state is what an upload session's state file records: the acknowledged
// size of its data file and the running hash over exactly those bytes.
type state struct {
	Alg     digest.Algorithm `json:"alg"`
	Size    int64            `json:"size"`
	Hash    []byte           `json:"hash"` // the hash's MarshalBinary state
	Started time.Time        `json:"started"`
	Updated time.Time        `json:"updated"`
}

// marshalHash returns h's resumable state.
func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, fmt.Errorf("hash %T cannot save its state", h)
	}
	return m.MarshalBinary()
}

// unmarshalHash returns a hash of alg restored from state b.
func unmarshalHash(alg digest.Algorithm, b []byte) (hash.Hash, error) {
	if !supported(alg) {
		return nil, fmt.Errorf("unsupported hash algorithm %q", alg)
	}
	h := alg.Hash()
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok {
		return nil, fmt.Errorf("hash %T cannot restore its state", h)
	}
	if err := u.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return h, nil
}

// encodeState serialises st.
func encodeState(st state) ([]byte, error) { return json.Marshal(st) }

// decodeState parses a state file and restores its hash. It rejects
// anything it did not write itself.
func decodeState(b []byte) (state, hash.Hash, error) {
	var st state
	if len(b) > maxStateSize {
		return st, nil, errors.New("state file too large")
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, nil, err
	}
	if st.Size < 0 {
		return st, nil, fmt.Errorf("negative size %d", st.Size)
	}
	h, err := unmarshalHash(st.Alg, st.Hash)
	if err != nil {
		return st, nil, err
	}
	// The SHA-2 state ends with the count of bytes hashed, big-endian: it
	// must be the acknowledged size, or data and hash disagree.
	if n := len(st.Hash); n < 8 || binary.BigEndian.Uint64(st.Hash[n-8:]) != uint64(st.Size) {
		return st, nil, fmt.Errorf("hash state does not cover %d bytes", st.Size)
	}
	return st, h, nil
}
