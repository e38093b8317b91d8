package registry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
)

// Upload session URLs carry "<blob store upload id>.<mac>", where mac binds
// the id to the repository the session was started in. The binding needs no
// stored state, so any replica can check it.

// macLen is the number of HMAC-SHA256 bytes kept in a session token.
const macLen = 16

// sessionToken returns the URL token for upload id in repo.
func (h *handler) sessionToken(repo, id string) string {
	return id + "." + base64.RawURLEncoding.EncodeToString(h.sessionMAC(repo, id))
}

func (h *handler) sessionMAC(repo, id string) []byte {
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(repo))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return m.Sum(nil)[:macLen]
}

// sessionID checks token against repo and returns the upload id. A token
// that is malformed or belongs to another repository is reported as an
// unknown upload (BLOB_UPLOAD_UNKNOWN), as the session does not exist here.
func (h *handler) sessionID(repo, token string) (string, error) {
	i := strings.LastIndexByte(token, '.')
	if i <= 0 {
		return "", unknownUpload()
	}
	id, sum := token[:i], token[i+1:]
	mac, err := base64.RawURLEncoding.DecodeString(sum)
	if err != nil || !hmac.Equal(mac, h.sessionMAC(repo, id)) {
		return "", unknownUpload()
	}
	return id, nil
}

func unknownUpload() error {
	return apperr.Errorf(apperr.ENOTFOUND, "upload session unknown to this repository").WithDetail(codeBlobUploadUnknown)
}

// contentRange is an inclusive byte range "<start>-<end>" of an upload chunk.
type contentRange struct {
	Start, End int64
}

// Len is the number of bytes in the range.
func (c contentRange) Len() int64 { return c.End - c.Start + 1 }

// parseContentRange parses a chunk's Content-Range, "<start>-<end>" as the
// spec says (^[0-9]+-[0-9]+$, inclusive), also accepting the "bytes "
// prefix of RFC 9110 that some clients send and an "/<size>" or "/*"
// suffix. end must not be below start.
func parseContentRange(s string) (contentRange, error) {
	bad := func() (contentRange, error) {
		return contentRange{}, apperr.Errorf(apperr.EINVALID,
			"invalid Content-Range %q: expected <start>-<end>, inclusive", truncate(s, 80)).WithDetail(codeBlobUploadInvalid)
	}
	v := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(v, "bytes"); ok {
		if rest == "" || rest[0] != ' ' && rest[0] != '=' {
			return bad()
		}
		v = strings.TrimSpace(rest[1:])
	}
	if i := strings.IndexByte(v, '/'); i >= 0 {
		total := v[i+1:]
		if total != "*" && !digits(total) {
			return bad()
		}
		v = v[:i]
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok || !digits(a) || !digits(b) {
		return bad()
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || end < start {
		return bad()
	}
	return contentRange{Start: start, End: end}, nil
}

// digits reports whether s is a non-empty run of ASCII digits.
func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// rangeHeader is the Range value reporting size acknowledged bytes:
// "0-<last byte>", and "0-0" for an empty session as distribution answers.
func rangeHeader(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(size-1, 10)
}
