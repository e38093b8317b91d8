package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb"
)

// VulnDB is the vulnerability database the API serves (vulndb.Service).
type VulnDB interface {
	// Status describes the database, with the imports running now.
	Status(ctx context.Context) (*vulndb.Status, error)
	// StartUpdate starts an update from the configured sources in the
	// background (ECONFLICT if one runs, EINVALID without sources).
	StartUpdate() error
	// Advisory returns an advisory by id, or ENOTFOUND.
	Advisory(ctx context.Context, id string) (*vulndb.Advisory, error)
	// Match returns an inventory's findings.
	Match(ctx context.Context, inv *inventory.Inventory) (*vulndb.MatchResult, error)
}

// Audit actions of the vulnerability database.
const auditVulnUpdate = "vulndb.update"

// maxInventoryBody caps the inventory of POST /api/v1/vulndb/match (an
// image with thousands of packages is a few MiB).
const maxInventoryBody = 16 << 20

func (h *handler) vulndbRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/vulndb", h.wrap(h.vulndbStatus))
	mux.Handle("POST /api/v1/vulndb/update", h.wrap(h.vulndbUpdate))
	mux.Handle("GET /api/v1/vulndb/advisories/{id}", h.wrap(h.vulndbAdvisory))
	mux.Handle("POST /api/v1/vulndb/match", h.wrap(h.vulndbMatch))
}

// vulndbStatus answers the database's status: sources, counts per
// ecosystem, revision, last update, running imports.
func (h *handler) vulndbStatus(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := requireUser(p); err != nil {
		return err
	}
	st, err := h.opts.Vulndb.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// vulndbUpdate starts an update from the configured sources (system
// administrators only) and answers 202 with the status showing it.
func (h *handler) vulndbUpdate(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, auditVulnUpdate, "vulndb"); err != nil {
		return err
	}
	if err := h.opts.Vulndb.StartUpdate(); err != nil {
		return err
	}
	h.audit(r, p, audit.Event{Action: auditVulnUpdate, Resource: "vulndb"})
	st, err := h.opts.Vulndb.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, st)
	return nil
}

func (h *handler) vulndbAdvisory(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := requireUser(p); err != nil {
		return err
	}
	a, err := h.opts.Vulndb.Advisory(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// vulndbMatch matches the inventory in the body (the JSON of
// inventory.Inventory) and answers its findings.
func (h *handler) vulndbMatch(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := requireUser(p); err != nil {
		return err
	}
	var inv inventory.Inventory
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInventoryBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		var me *http.MaxBytesError
		switch {
		case errors.As(err, &me):
			return apperr.Errorf(apperr.ETOOLARGE, "inventory larger than %d bytes", maxInventoryBody)
		case errors.Is(err, io.EOF):
			return apperr.Errorf(apperr.EINVALID, "request body is empty; expected an inventory")
		}
		return apperr.Errorf(apperr.EINVALID, "request body is not an inventory: %v", err)
	}
	if dec.More() {
		return apperr.Errorf(apperr.EINVALID, "request body holds more than one inventory")
	}
	for i, pkg := range inv.Packages {
		if pkg.Ecosystem == "" || pkg.Name == "" {
			return apperr.Errorf(apperr.EINVALID, "packages[%d] needs an ecosystem and a name", i)
		}
	}
	res, err := h.opts.Vulndb.Match(r.Context(), &inv)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
