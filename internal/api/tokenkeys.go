package api

import (
	"net/http"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
)

// TokenKeys is the token signing key directory the admin API lists,
// rotates and prunes (auth.KeyDir implements it).
type TokenKeys interface {
	// Keys lists the key files (never key material).
	Keys() ([]auth.KeyInfo, error)
	// Rotate makes a new signing key and returns its key id.
	Rotate() (string, error)
	// Prune removes the key files retired before cutoff (never the signing
	// key), refusing (EINVALID) a cutoff later than now minus minAge.
	Prune(cutoff time.Time, minAge time.Duration) ([]auth.KeyInfo, error)
}

// Audit actions of token key changes.
const (
	auditTokenKeyRotate = "token_key.rotate"
	auditTokenKeyPrune  = "token_key.prune"
)

// TokenKey is one token signing key file in API answers.
type TokenKey struct {
	auth.KeyInfo
	// AgeSeconds is how long ago the file was last modified.
	AgeSeconds int64 `json:"ageSeconds"`
}

// TokenKeyList answers GET /api/v1/system/token-keys.
type TokenKeyList struct {
	// Signing is the key id new tokens are signed with.
	Signing string     `json:"signing"`
	Keys    []TokenKey `json:"keys"`
	// MinRetireAgeSeconds is the refresh-token lifetime: a key file younger
	// than this may still have signed a valid token and is never pruned.
	MinRetireAgeSeconds int64 `json:"minRetireAgeSeconds"`
}

// TokenKeyRotation answers POST /api/v1/system/token-keys:rotate.
type TokenKeyRotation struct {
	// ID is the new signing key's id (the "kid" of tokens issued from now).
	ID string `json:"id"`
	// Previous is the key id that signed before.
	Previous string `json:"previous"`
}

// TokenKeyPruneRequest is the body of POST /api/v1/system/token-keys:prune.
type TokenKeyPruneRequest struct {
	// OlderThan is a duration ("2160h", "90d"): key files retired (that
	// stopped signing) longer ago are removed, the signing key never.
	OlderThan string `json:"olderThan"`
}

// TokenKeyPrune answers POST /api/v1/system/token-keys:prune.
type TokenKeyPrune struct {
	Removed []auth.KeyInfo `json:"removed"`
}

// Token signing keys are system administration: only system administrators
// list, rotate or prune them; rotations and prunes (and refusals of them)
// are audited.
func (h *handler) tokenKeyRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/system/token-keys", h.wrap(h.listTokenKeys))
	mux.Handle("POST /api/v1/system/token-keys:rotate", h.wrap(h.rotateTokenKey))
	mux.Handle("POST /api/v1/system/token-keys:prune", h.wrap(h.pruneTokenKeys))
}

func (h *handler) listTokenKeys(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, "", ""); err != nil {
		return err
	}
	keys, err := h.opts.TokenKeys.Keys()
	if err != nil {
		return err
	}
	now := h.opts.Clock()
	out := TokenKeyList{Keys: []TokenKey{}, MinRetireAgeSeconds: int64(h.opts.TokenKeyMinAge / time.Second)}
	for _, k := range keys {
		if k.Signing {
			out.Signing = k.ID
		}
		out.Keys = append(out.Keys, TokenKey{KeyInfo: k, AgeSeconds: int64(now.Sub(k.Modified) / time.Second)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) signingKeyID() string {
	keys, err := h.opts.TokenKeys.Keys()
	if err != nil {
		return ""
	}
	for _, k := range keys {
		if k.Signing {
			return k.ID
		}
	}
	return ""
}

func (h *handler) rotateTokenKey(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, auditTokenKeyRotate, "system/token-keys"); err != nil {
		return err
	}
	prev := h.signingKeyID()
	kid, err := h.opts.TokenKeys.Rotate()
	if err != nil {
		h.audit(r, p, audit.Event{Action: auditTokenKeyRotate, Resource: "system/token-keys", Outcome: audit.Failure, Reason: apperr.Message(err)})
		return err
	}
	reqLogger(r, h).Info("token signing key rotated", "kid", kid, "previous", prev, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditTokenKeyRotate, Resource: "system/token-keys/" + kid,
		Details: map[string]string{"kid": kid, "previous": prev}})
	writeJSON(w, http.StatusCreated, TokenKeyRotation{ID: kid, Previous: prev})
	return nil
}

func (h *handler) pruneTokenKeys(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, auditTokenKeyPrune, "system/token-keys"); err != nil {
		return err
	}
	var req TokenKeyPruneRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.OlderThan == "" {
		return apperr.Errorf(apperr.EINVALID, "olderThan: a duration (2160h, 90d) is required")
	}
	age, err := parseAge(req.OlderThan)
	if err != nil {
		return apperr.Errorf(apperr.EINVALID, "olderThan: %s", apperr.Message(err))
	}
	removed, err := h.opts.TokenKeys.Prune(h.opts.Clock().Add(-age), h.opts.TokenKeyMinAge)
	if len(removed) > 0 || err == nil {
		ids := ""
		for i, k := range removed {
			if i > 0 {
				ids += ","
			}
			ids += k.ID
		}
		h.audit(r, p, audit.Event{Action: auditTokenKeyPrune, Resource: "system/token-keys",
			Details: map[string]string{"olderThan": req.OlderThan, "removed": ids}})
	}
	if err != nil {
		return err
	}
	if removed == nil {
		removed = []auth.KeyInfo{}
	}
	writeJSON(w, http.StatusOK, TokenKeyPrune{Removed: removed})
	return nil
}
