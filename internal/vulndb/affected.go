package vulndb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/match"
)

// LookupName is the name a stored package is found by in reverse matching:
// the name advisories key it by (match.KeyOf), "" for a package of an
// unknown ecosystem.
func LookupName(p inventory.Package) string {
	k, _, ok := match.KeyOf(p)
	if !ok {
		return ""
	}
	return k.Name
}

// PutInventory stores inv under key so that Affected finds it.
func (s *Service) PutInventory(ctx context.Context, key store.InventoryKey, inv *inventory.Inventory) error {
	return s.st.PutInventory(ctx, key, inv, LookupName)
}

// AffectedInventory is a stored inventory affected by some advisories.
type AffectedInventory struct {
	Key      store.InventoryKey `json:"key"`
	Findings []match.Finding    `json:"findings"`
}

// AffectedResult answers which stored inventories some advisories affect.
type AffectedResult struct {
	// Revision is the database revision the findings come from.
	Revision int64 `json:"revision"`
	// Advisories are the advisory ids evaluated: the ids asked about that
	// the database holds, and the advisories naming the others (CVE ids)
	// as an alias or upstream id, sorted.
	Advisories []string `json:"advisories"`
	// Inventories are the affected inventories, ordered by key, each with
	// its findings of those advisories.
	Inventories []AffectedInventory `json:"inventories"`
}

// AffectedSinceResult is AffectedResult for the changes after a revision.
type AffectedSinceResult struct {
	AffectedResult
	// Since is the revision asked about.
	Since int64 `json:"since"`
	// Changed lists the ids changed after Since: advisories, CVE ids whose
	// rating changed and ids whose override changed. For each advisory of
	// Advisories, and each id of Changed the database no longer holds,
	// these findings replace any earlier ones.
	Changed []string `json:"changed"`
}

// refBatch is how many found packages wait for their inventories' distros
// to be looked up together.
const refBatch = 20000

// Affected returns, for every stored inventory that the advisories ids (or
// the advisories aliasing them) affect, the findings of those advisories.
// It looks packages up by the advisories' keys (Index.Keys) and evaluates
// versions with the index; it reads no layer and no whole inventory.
func (s *Service) Affected(ctx context.Context, ids []string) (*AffectedResult, error) {
	snap, err := s.snapshot(ctx, 0)
	if err != nil {
		return nil, err
	}
	return s.affected(ctx, snap, ids)
}

func (s *Service) affected(ctx context.Context, snap *snapshot, ids []string) (*AffectedResult, error) {
	want := map[string]bool{}
	for _, id := range ids {
		if _, ok := snap.ix.Advisory(id); ok {
			want[id] = true
		}
		for _, a := range snap.aliases[id] {
			if _, ok := snap.ix.Advisory(a); ok {
				want[a] = true
			}
		}
	}
	res := &AffectedResult{Revision: snap.rev, Advisories: []string{}, Inventories: []AffectedInventory{}}
	keySet := map[store.PackageKey]bool{}
	for id := range want {
		res.Advisories = append(res.Advisories, id)
		for _, k := range snap.ix.Keys(id) {
			keySet[store.PackageKey{Ecosystem: k.Ecosystem, Name: k.Name}] = true
		}
	}
	slices.Sort(res.Advisories)
	if len(keySet) == 0 {
		return res, nil
	}
	keys := make([]store.PackageKey, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}

	refs := map[int64]store.InventoryRef{}
	found := map[int64][]match.Finding{}
	var batch []store.InventoryPackage
	flush := func() error {
		var missing []int64
		for _, p := range batch {
			if _, ok := refs[p.InventoryID]; !ok {
				missing = append(missing, p.InventoryID)
				refs[p.InventoryID] = store.InventoryRef{} // asked once
			}
		}
		if len(missing) > 0 {
			got, err := s.st.InventoryRefs(ctx, missing)
			if err != nil {
				return err
			}
			for id, r := range got {
				refs[id] = r
			}
		}
		for _, p := range batch {
			ref := refs[p.InventoryID]
			if ref.ID == 0 {
				continue // deleted meanwhile
			}
			for _, f := range snap.ix.MatchPackage(ref.Distro, p.Package) {
				if want[f.AdvisoryID] {
					found[p.InventoryID] = append(found[p.InventoryID], f)
				}
			}
		}
		batch = batch[:0]
		return ctx.Err()
	}
	err := s.st.InventoryPackages(ctx, keys, func(p store.InventoryPackage) error {
		batch = append(batch, p)
		if len(batch) >= refBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	for id, fs := range found {
		slices.SortFunc(fs, compareFindings)
		res.Inventories = append(res.Inventories, AffectedInventory{Key: refs[id].Key, Findings: fs})
	}
	slices.SortFunc(res.Inventories, func(a, b AffectedInventory) int {
		return cmp.Or(cmp.Compare(a.Key.Digest, b.Key.Digest), cmp.Compare(a.Key.Platform, b.Key.Platform))
	})
	return res, nil
}

// compareFindings orders findings as match does: severity (level, then
// score) highest first, then advisory id, then package.
func compareFindings(a, b match.Finding) int {
	return cmp.Or(
		cmp.Compare(b.Severity.Level, a.Severity.Level),
		cmp.Compare(b.Severity.Score, a.Severity.Score),
		cmp.Compare(a.AdvisoryID, b.AdvisoryID),
		cmp.Compare(a.Package.Ecosystem, b.Package.Ecosystem),
		cmp.Compare(a.Package.Name, b.Package.Name),
		cmp.Compare(a.Package.Version, b.Package.Version),
	)
}

// ErrTooOld is wrapped by the error (ECONFLICT) of AffectedSince for a
// revision whose later changes were pruned from the change log (see
// Options.ChangeLogRetention): the caller has to match every stored
// inventory again instead. Test for it with errors.Is.
var ErrTooOld = store.ErrVulnChangesPruned

// AffectedSince is Affected for everything that changed after revision
// since: advisories, CVE ratings (through aliases) and overrides. It
// answers with an index at revision since or newer (waiting for one to be
// built if need be), and Revision says which: changes after it are left
// for the next call. EINVALID for a negative revision; an error wrapping
// ErrTooOld when the change log no longer reaches back to since.
func (s *Service) AffectedSince(ctx context.Context, since int64) (*AffectedSinceResult, error) {
	if since < 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "revision %d is negative", since)
	}
	snap, err := s.snapshot(ctx, since)
	if err != nil {
		return nil, err
	}
	changes, err := s.st.VulnChangesSince(ctx, since)
	if errors.Is(err, store.ErrVulnChangesPruned) {
		return nil, apperr.Wrap(ErrTooOld, apperr.ECONFLICT, fmt.Sprintf("vulnerability database revision %d is too old: %s; "+
			"match every stored inventory again", since, apperr.Message(err)))
	}
	if err != nil {
		return nil, err
	}
	out := &AffectedSinceResult{Since: since, Changed: []string{}}
	seen := map[string]bool{}
	for _, c := range changes {
		// Changes newer than the snapshot are left for the next call.
		if c.Revision > snap.rev || seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		out.Changed = append(out.Changed, c.ID)
	}
	slices.Sort(out.Changed)
	res, err := s.affected(ctx, snap, out.Changed)
	if err != nil {
		return nil, err
	}
	out.AffectedResult = *res
	return out, nil
}
