package api

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/scan"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// maxQueuePosition bounds how far into the queue GET /api/v1/images looks
// for a queued scan's position; a scan further back has none.
const maxQueuePosition = 500

func (h *handler) imageRoutes(mux *http.ServeMux) {
	// {ref} is a manifest digest (seed 004's Task), or
	// "<project>/<repository>:<tag>" / "<project>/<repository>@<digest>".
	mux.Handle("GET /api/v1/images/{ref...}", h.wrapRobotBearer(h.imageVulnerabilities))
}

// ImageVulnerabilities is the answer of GET /api/v1/images/{ref}: an
// image's findings grouped by package, in the shape of the Tanzu Metadata
// Store's image endpoint that seed 004's Tekton Task reads
// (.Packages[].Vulnerabilities[].Ratings[].Severity, capitalised), with
// customs' own fields beside it. It is answered with 200 when the scan is
// done; with 202 (Status queued or running, no packages) while the scan
// waits or runs; and with 409 (Status failed or unsupported, and an
// "error" member as every API error has) when the scan ended without
// findings to count, so that a client looping until 200 never passes an
// image nothing checked. With ?anyStatus=true every status is answered
// with 200 (and no "error").
type ImageVulnerabilities struct {
	// Digest is the manifest digest; Repository the repository named in
	// the request, or one repository holding the digest that the caller
	// may pull from.
	Digest     string `json:"Digest"`
	Repository string `json:"Repository,omitempty"`
	// Status is queued, running, done, failed or unsupported (or, with
	// ?anyStatus=true, unscanned: neither a report nor a queued scan, which
	// is 404 otherwise); Stage what a
	// running scan is doing; Reason why a scan failed, is unsupported, or
	// is queued again after a failure.
	Status string `json:"Status"`
	Stage  string `json:"Stage,omitempty"`
	Reason string `json:"Reason,omitempty"`
	// Position is a queued scan's place in the scan queue (1: next), when
	// known.
	Position int `json:"Position,omitempty"`
	// MediaType and Platform describe the manifest.
	MediaType string `json:"MediaType,omitempty"`
	Platform  string `json:"Platform,omitempty"`
	// VulnDBRevision is the vulnerability database revision the findings
	// were matched against.
	VulnDBRevision int64     `json:"VulnDBRevision"`
	ScannedAt      time.Time `json:"ScannedAt,omitzero"`
	MatchedAt      time.Time `json:"MatchedAt,omitzero"`
	// Counts are the findings per severity as the scanner rated them
	// (unknown ones under Unknown, whatever UnknownAs says).
	Counts ImageCounts `json:"Counts"`
	// UnknownAs is how findings of unknown severity are rated in Ratings
	// (see ImageVulnerability.Ratings): a level name, or "ignore".
	UnknownAs string `json:"UnknownAs"`
	// Packages are the packages that have findings, each with its
	// vulnerabilities; [] when there are none (the whole inventory is the
	// SBOM at /api/v1/scans/{digest}/sbom).
	Packages []ImagePackage `json:"Packages"`
	// Error is set on a 409 answer (code and message, as ErrorBody).
	Error *ErrorDetail `json:"error,omitempty"`
}

// ErrorDetail is the "error" member of an API error answer.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ImageCounts are findings per severity level.
type ImageCounts struct {
	Critical int `json:"Critical"`
	High     int `json:"High"`
	Medium   int `json:"Medium"`
	Low      int `json:"Low"`
	None     int `json:"None"`
	Unknown  int `json:"Unknown"`
}

// ImagePackage is one installed package with findings.
type ImagePackage struct {
	Name    string `json:"Name"`
	Version string `json:"Version"`
	// Type is the package's OSV ecosystem ("Alpine", "Debian", "Go",
	// "PyPI", "npm", ...).
	Type          string `json:"Type"`
	SourceName    string `json:"SourceName,omitempty"`
	SourceVersion string `json:"SourceVersion,omitempty"`
	PURL          string `json:"PURL,omitempty"`
	// Vulnerabilities are the package's findings, highest severity first.
	Vulnerabilities []ImageVulnerability `json:"Vulnerabilities"`
}

// ImageVulnerability is one advisory affecting the package.
type ImageVulnerability struct {
	// CVEID is the advisory's CVE id when it has one (as an alias), else
	// its id; AdvisoryID is the id the scanner matched.
	CVEID      string   `json:"CVEID"`
	AdvisoryID string   `json:"AdvisoryID"`
	Aliases    []string `json:"Aliases,omitempty"`
	// FixedVersion is the lowest version that fixes it ("" without fix);
	// FixedVersions all of them; FixStatus fixed, no-fix or wont-fix; Fix
	// the remedy in words.
	FixedVersion  string   `json:"FixedVersion,omitempty"`
	FixedVersions []string `json:"FixedVersions,omitempty"`
	FixStatus     string   `json:"FixStatus"`
	Fix           string   `json:"Fix"`
	Summary       string   `json:"Summary,omitempty"`
	// Ratings hold the scanner's rating ("Critical", "High", "Medium",
	// "Low", "None" or "Unknown", with its CVSS score and vector when it
	// has them, and its source as Method). A finding of unknown severity
	// gets a second rating, Method "unknownAs", at the level UnknownAs
	// names (critical unless the request says otherwise), so that a
	// client counting the four levels counts it as customs' gate does;
	// with unknownAs=ignore it has the Unknown rating only.
	Ratings []ImageRating `json:"Ratings"`
}

// ImageRating is one severity rating of a vulnerability.
type ImageRating struct {
	Severity string  `json:"Severity"`
	Score    float64 `json:"Score,omitempty"`
	Vector   string  `json:"Vector,omitempty"`
	// Method is where the rating comes from: advisory-cvss-v3,
	// advisory-database-specific, cve-feed, override, unknown, or
	// unknownAs (see ImageVulnerability.Ratings).
	Method string `json:"Method"`
	Detail string `json:"Detail,omitempty"`
}

// severityWord is the capitalised name of a level ("Critical").
func severityWord(l severity.Level) string {
	s := l.String()
	if !l.Known() && l != severity.Unknown {
		s = severity.Unknown.String()
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// RobotBearer turns the value of an "Authorization: Bearer X" header into
// Basic credentials when X is the base64 of "robot$NAME:SECRET" (a robot
// account's name and secret, as a CI system keeps them in one secret):
// it returns X and true, and "" and false for anything else (an access
// token of the token service, a user's credentials, garbage). Only robot
// credentials are accepted this way, so that no user password ends up in
// a CI secret.
func RobotBearer(x string) (string, bool) {
	if x == "" || len(x) > 4096 || strings.Count(x, ".") == 2 {
		return "", false // empty, absurd, or a JWT
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(x)
		if err != nil {
			continue
		}
		name, secret, ok := strings.Cut(string(b), ":")
		if !ok || !auth.IsRobotName(name) || len(name) == len(auth.RobotPrefix) || secret == "" ||
			strings.ContainsAny(string(b), "\r\n\x00") {
			return "", false
		}
		return base64.StdEncoding.EncodeToString(b), true
	}
	return "", false
}

// wrapRobotBearer is wrap, accepting robot credentials as a bearer token
// too (see RobotBearer): CI systems send "Authorization: Bearer
// ${ACCESS_TOKEN}" with a token kept in a secret, as seed 004's Task does,
// and a robot's secret does not expire after minutes as an access token
// does. The credentials are checked as Basic ones (login limiter, audit).
func (h *handler) wrapRobotBearer(fn apiFunc) http.Handler {
	inner := h.wrap(fn)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			if basic, ok := RobotBearer(strings.TrimSpace(value)); ok {
				r = r.Clone(r.Context())
				r.Header.Set("Authorization", "Basic "+basic)
			}
		}
		inner.ServeHTTP(w, r)
	})
}

// ParseImageRef splits the {ref} of GET /api/v1/images/{ref} into a
// repository ("" for a bare digest) and a digest or tag: "sha256:…",
// "PROJECT/REPOSITORY:TAG" or "PROJECT/REPOSITORY@DIGEST". Anything else
// is an EINVALID error naming it.
func ParseImageRef(s string) (repo, ref string, err error) {
	if d, err := digest.Parse(s); err == nil {
		return "", d.String(), nil
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		repo, ref = s[:i], s[i+1:]
		if _, err := digest.Parse(ref); err != nil {
			return "", "", apperr.Errorf(apperr.EINVALID, "%q is not a digest (algorithm:hex)", ref)
		}
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		repo, ref = s[:i], s[i+1:]
	}
	if repo == "" || ref == "" || !strings.Contains(repo, "/") {
		return "", "", apperr.Errorf(apperr.EINVALID,
			"%q is not a manifest digest (sha256:…) nor PROJECT/REPOSITORY:TAG or PROJECT/REPOSITORY@DIGEST", s)
	}
	if _, err := reference.ParseNamed("localhost/" + s); err != nil {
		return "", "", apperr.Errorf(apperr.EINVALID, "%q is not an image reference: %v", s, err)
	}
	return repo, ref, nil
}

// mayPull returns nil if p may pull from a project holding repository
// repo (or, for repo "", some repository holding digest d, which it
// returns); ENOTFOUND otherwise, so that images cannot be probed
// (EUNAUTHORIZED for anonymous callers).
func (h *handler) mayPull(r *http.Request, p auth.Principal, repo string, d digest.Digest) (string, error) {
	repos := []string{repo}
	if repo == "" {
		var err error
		if repos, err = h.opts.ScanStore.ManifestRepositories(r.Context(), d.String(), maxScanRepos); err != nil {
			return "", err
		}
	}
	seen := map[string]bool{}
	for _, rp := range repos {
		project, _, _ := strings.Cut(rp, "/")
		if seen[project] {
			continue
		}
		seen[project] = true
		if p.Admin && p.Kind != auth.KindAnonymous {
			return rp, nil
		}
		may, err := h.opts.Auth.ProjectPermissions(r.Context(), p, project)
		if err != nil {
			return "", err
		}
		if may.Has(rbac.ActionPull) {
			return rp, nil
		}
	}
	if p.Kind == auth.KindAnonymous {
		return "", apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	if repo != "" {
		return "", apperr.Errorf(apperr.ENOTFOUND, "no repository %s you may pull from", repo)
	}
	return "", apperr.Errorf(apperr.ENOTFOUND, "no image with digest %s that you may pull", d)
}

// imageVulnerabilities answers GET /api/v1/images/{ref} (see
// ImageVulnerabilities): the pull right on the image's project is needed.
// ?unknownAs= (none, low, medium, high, critical or ignore; default
// critical) says how findings of unknown severity are rated;
// ?anyStatus=true answers 200 whatever the scan's status, for clients
// that read Status themselves (customs gate).
func (h *handler) imageVulnerabilities(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q := r.URL.Query()
	unknownAs := policy.UnknownAs(policy.Critical)
	if s := q.Get("unknownAs"); s != "" {
		if err := unknownAs.UnmarshalText([]byte(s)); err != nil {
			return apperr.Errorf(apperr.EINVALID, "query parameter unknownAs: %v", err)
		}
	}
	anyStatus := false
	switch s := q.Get("anyStatus"); s {
	case "", "false":
	case "true":
		anyStatus = true
	default:
		return apperr.Errorf(apperr.EINVALID, "query parameter anyStatus: %q is not true or false", s)
	}
	ok := func(st int) int {
		if anyStatus {
			return http.StatusOK
		}
		return st
	}
	repo, ref, err := ParseImageRef(r.PathValue("ref"))
	if err != nil {
		return err
	}
	var d digest.Digest
	if repo != "" {
		if _, err := h.mayPull(r, p, repo, ""); err != nil {
			return err
		}
		if d, err = digest.Parse(ref); err != nil {
			t, err := h.opts.ScanStore.Tag(r.Context(), repo, ref)
			if err != nil {
				if apperr.Is(err, apperr.ENOTFOUND) {
					return apperr.Errorf(apperr.ENOTFOUND, "no tag %q in repository %s", ref, repo)
				}
				return err
			}
			d = t.Digest
		}
	} else {
		d = digest.Digest(ref)
		if repo, err = h.mayPull(r, p, "", d); err != nil {
			return err
		}
	}
	rep, err := h.opts.Scans.Report(r.Context(), d.String())
	if apperr.Is(err, apperr.ENOTFOUND) && anyStatus {
		writeJSON(w, http.StatusOK, &ImageVulnerabilities{Digest: d.String(), Repository: repo, Status: scan.StatusUnscanned,
			Reason:    "no scan of it is queued (customs image scan " + repo + "@" + d.String() + " queues one)",
			UnknownAs: unknownAs.String(), Packages: []ImagePackage{}})
		return nil
	}
	if apperr.Is(err, apperr.ENOTFOUND) {
		return apperr.Errorf(apperr.ENOTFOUND, "%s in %s has not been scanned and no scan is queued (customs image scan %s@%s queues one)", d, repo, repo, d)
	}
	if err != nil {
		return err
	}
	out := toImageVulnerabilities(rep, unknownAs)
	out.Repository = repo
	switch rep.Status {
	case report.StatusQueued, report.StatusRunning:
		out.Packages = []ImagePackage{}
		if rep.Status == report.StatusQueued {
			out.Position = h.queuePosition(r, d.String())
		} else {
			out.Stage = h.runningStage(r, d.String())
		}
		writeJSON(w, ok(http.StatusAccepted), out)
		return nil
	case report.StatusDone:
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	out.Packages = []ImagePackage{}
	msg := "the scan of " + d.String() + " ended " + string(rep.Status)
	if rep.Reason != "" {
		msg += ": " + rep.Reason
	}
	if !anyStatus {
		out.Error = &ErrorDetail{Code: apperr.ECONFLICT, Message: msg + "; there are no findings to check"}
	}
	writeJSON(w, ok(status(apperr.ECONFLICT)), out)
	return nil
}

// queuePosition is the place of digest's queued scan in the queue (1:
// next), or 0 when it is not among the first maxQueuePosition.
func (h *handler) queuePosition(r *http.Request, d string) int {
	q, err := h.opts.Scans.Queue(r.Context(), maxQueuePosition)
	if err != nil {
		reqLogger(r, h).Warn("scan queue position unavailable", "digest", d, "err", err)
		return 0
	}
	n := 0
	for _, j := range q.Jobs {
		if j.Status != store.ScanQueued {
			continue
		}
		n++
		if j.Kind == store.ScanJobManifest && j.Subject == d {
			return n
		}
	}
	return 0
}

// runningStage is what the running scan of digest is doing, when known.
func (h *handler) runningStage(r *http.Request, d string) string {
	q, err := h.opts.Scans.Queue(r.Context(), maxQueuePosition)
	if err != nil {
		return ""
	}
	for _, j := range q.Jobs {
		if j.Status == store.ScanRunning && j.Kind == store.ScanJobManifest && j.Subject == d {
			return j.Stage
		}
	}
	return ""
}

// toImageVulnerabilities groups rep's findings by package.
func toImageVulnerabilities(rep *report.Report, unknownAs policy.UnknownAs) *ImageVulnerabilities {
	c := rep.Counts
	out := &ImageVulnerabilities{Digest: rep.Digest, Status: string(rep.Status), Reason: rep.Reason,
		MediaType: rep.MediaType, Platform: rep.Platform, VulnDBRevision: rep.VulnDBRevision,
		ScannedAt: rep.ScannedAt, MatchedAt: rep.MatchedAt, UnknownAs: unknownAs.String(),
		Counts:   ImageCounts{Critical: c.Critical, High: c.High, Medium: c.Medium, Low: c.Low, None: c.None, Unknown: c.Unknown},
		Packages: []ImagePackage{}}
	index := map[string]int{}
	for _, f := range rep.Findings {
		k := f.Package.Ecosystem + "\x00" + f.Package.Name + "\x00" + f.InstalledVersion
		i, ok := index[k]
		if !ok {
			i = len(out.Packages)
			index[k] = i
			out.Packages = append(out.Packages, ImagePackage{Name: f.Package.Name, Version: f.InstalledVersion, Type: f.Package.Ecosystem,
				SourceName: f.Package.SourceName, SourceVersion: f.Package.SourceVersion, PURL: f.Package.PURL,
				Vulnerabilities: []ImageVulnerability{}})
		}
		out.Packages[i].Vulnerabilities = append(out.Packages[i].Vulnerabilities, toImageVulnerability(f, unknownAs))
	}
	slices.SortStableFunc(out.Packages, func(a, b ImagePackage) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return out
}

// toImageVulnerability converts one finding, rating an unknown severity as
// unknownAs says.
func toImageVulnerability(f report.Finding, unknownAs policy.UnknownAs) ImageVulnerability {
	v := ImageVulnerability{CVEID: f.AdvisoryID, AdvisoryID: f.AdvisoryID, Aliases: f.Aliases, FixedVersions: f.FixedVersions,
		FixStatus: string(f.Status), Fix: f.Fix, Summary: f.Summary}
	for _, a := range f.Aliases {
		if strings.HasPrefix(a, "CVE-") {
			v.CVEID = a
			break
		}
	}
	if len(f.FixedVersions) > 0 {
		v.FixedVersion = f.FixedVersions[0]
	}
	rt := f.Severity
	v.Ratings = []ImageRating{{Severity: severityWord(rt.Level), Score: rt.Score, Vector: rt.Vector, Method: string(cmp.Or(rt.Source, severity.SourceUnknown)), Detail: rt.Detail}}
	if !rt.Level.Known() && unknownAs != policy.UnknownIgnore {
		lvl := policy.Severity(unknownAs).String()
		v.Ratings = append(v.Ratings, ImageRating{Severity: strings.ToUpper(lvl[:1]) + lvl[1:], Method: "unknownAs",
			Detail: "no source rated this vulnerability; counted as " + lvl + " (query parameter unknownAs, as customs gate counts it)"})
	}
	return v
}
