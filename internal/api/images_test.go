package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// getImage GETs /api/v1/images/{ref}[?query] with the Authorization
// header auth ("" for none) and returns the status and the body.
func getImage(t *testing.T, e *scanEnv, ref, query, auth string) (int, []byte) {
	t.Helper()
	u := e.url + "/api/v1/images/" + ref
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// setReport gives the fake scanner a report of d.
func (e *scanEnv) setReport(d digest.Digest, r *report.Report) {
	e.fake.mu.Lock()
	defer e.fake.mu.Unlock()
	r.Digest = d.String()
	e.fake.reports[d.String()] = r
}

// TestImageVulnerabilitiesShape: the answer has the shape seed 004's Task
// reads (.Packages[].Vulnerabilities[].Ratings[].Severity capitalised),
// with customs' fields, by digest and by tag.
func TestImageVulnerabilitiesShape(t *testing.T) {
	e := newScanEnv(t)
	auth := basic("admin", adminPW)
	code, body := getImage(t, e, e.digest.String(), "", auth)
	if code != http.StatusOK {
		t.Fatalf("GET by digest: %d %s", code, body)
	}
	// The seed's jq paths, read generically.
	var generic struct {
		Packages []struct {
			Vulnerabilities []struct {
				Ratings []struct{ Severity string }
			}
		}
	}
	if err := json.Unmarshal(body, &generic); err != nil || len(generic.Packages) != 1 ||
		len(generic.Packages[0].Vulnerabilities) != 1 || generic.Packages[0].Vulnerabilities[0].Ratings[0].Severity != "Critical" {
		t.Fatalf("answer does not have .Packages[].Vulnerabilities[].Ratings[].Severity = Critical: %v\n%s", err, body)
	}
	var iv api.ImageVulnerabilities
	if err := json.Unmarshal(body, &iv); err != nil {
		t.Fatal(err)
	}
	p := iv.Packages[0]
	v := p.Vulnerabilities[0]
	if iv.Digest != e.digest.String() || iv.Status != "done" || iv.VulnDBRevision != 3 || iv.Counts.Critical != 1 || iv.UnknownAs != "critical" ||
		(iv.Repository != "p/team/app" && iv.Repository != "q/copy") ||
		p.Name != "musl" || p.Version != "1.1.20-r4" || p.Type != "Alpine" ||
		v.AdvisoryID != "ALPINE-CVE-2019-14697" || v.FixedVersion != "1.1.20-r5" || v.FixStatus != "fixed" ||
		v.Ratings[0].Method != "advisory-cvss-v3" || v.Ratings[0].Score != 9.8 || len(v.Ratings) != 1 {
		t.Errorf("answer %+v", iv)
	}
	code, body = getImage(t, e, "p/team/app:latest", "", auth)
	if err := json.Unmarshal(body, &iv); err != nil || code != http.StatusOK || iv.Digest != e.digest.String() || iv.Repository != "p/team/app" {
		t.Errorf("GET by tag: %d %s", code, body)
	}
	code, body = getImage(t, e, "p/team/app@"+e.digest.String(), "", auth)
	if code != http.StatusOK {
		t.Errorf("GET by repository@digest: %d %s", code, body)
	}
}

// TestImageVulnerabilitiesStatus: 200 only for a finished scan; 202 while
// queued or running; 409 for failed or unsupported; 404 for images never
// scanned or unknown; ?anyStatus=true answers 200 with the status.
func TestImageVulnerabilitiesStatus(t *testing.T) {
	e := newScanEnv(t)
	auth := basic("admin", adminPW)
	ctx := context.Background()
	tags, err := e.admin.RepositoryScans(ctx, "p/team/app")
	if err != nil {
		t.Fatal(err)
	}
	var old digest.Digest
	for _, tg := range tags.Tags {
		if tg.Tag == "old" {
			old = digest.Digest(tg.Digest)
		}
	}
	if old == "" {
		t.Fatal("no tag old")
	}
	check := func(name, ref, query string, wantCode int, wantStatus, wantErr string) {
		t.Helper()
		code, body := getImage(t, e, ref, query, auth)
		var iv api.ImageVulnerabilities
		_ = json.Unmarshal(body, &iv)
		var eb api.ErrorBody
		_ = json.Unmarshal(body, &eb)
		if code != wantCode || (wantStatus != "" && iv.Status != wantStatus) || (wantErr != "" && eb.Error.Code != wantErr) {
			t.Errorf("%s: %d %s; want %d status %q error %q", name, code, body, wantCode, wantStatus, wantErr)
		}
		if wantCode != http.StatusOK && wantCode/100 == 2 && len(iv.Packages) != 0 {
			t.Errorf("%s: a pending scan lists packages: %s", name, body)
		}
	}
	check("never scanned", old.String(), "", http.StatusNotFound, "", apperr.ENOTFOUND)
	check("never scanned, anyStatus", old.String(), "anyStatus=true", http.StatusOK, "unscanned", "")
	check("unknown digest", digest.FromString("nothing").String(), "", http.StatusNotFound, "", apperr.ENOTFOUND)
	check("unknown tag", "p/team/app:nope", "", http.StatusNotFound, "", apperr.ENOTFOUND)
	check("not a reference", "not-a-digest", "", http.StatusBadRequest, "", apperr.EINVALID)
	check("bad unknownAs", e.digest.String(), "unknownAs=severe", http.StatusBadRequest, "", apperr.EINVALID)
	check("bad anyStatus", e.digest.String(), "anyStatus=maybe", http.StatusBadRequest, "", apperr.EINVALID)

	for _, st := range []report.Status{report.StatusQueued, report.StatusRunning} {
		e.setReport(old, &report.Report{Status: st, Findings: []report.Finding{}})
		check(string(st), old.String(), "", http.StatusAccepted, string(st), "")
		check(string(st)+", anyStatus", old.String(), "anyStatus=true", http.StatusOK, string(st), "")
	}
	for _, st := range []report.Status{report.StatusFailed, report.StatusUnsupported} {
		e.setReport(old, &report.Report{Status: st, Reason: "layer 2 is not a tar", Findings: []report.Finding{}})
		check(string(st), old.String(), "", http.StatusConflict, string(st), apperr.ECONFLICT)
		check(string(st)+", anyStatus", old.String(), "anyStatus=true", http.StatusOK, string(st), "")
	}
}

// TestImageVulnerabilitiesAuth: the pull right is needed; a robot's
// credentials are accepted as a base64 bearer token, a user's are not.
func TestImageVulnerabilitiesAuth(t *testing.T) {
	e := newScanEnv(t)
	ctx := context.Background()
	e.user(t, "guest", "guest-pw-1", rbac.RoleGuest)
	e.user(t, "outsider", "outsider-pw-1", 0)
	rb, err := e.admin.CreateRobot(ctx, "p", api.CreateRobotRequest{Name: "tekton", Actions: []rbac.Action{rbac.ActionPull}})
	if err != nil {
		t.Fatal(err)
	}
	token := func(user, secret string) string {
		return "Bearer " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
	}
	d := e.digest.String()
	for _, tc := range []struct {
		name, ref, auth string
		want            int
	}{
		{"guest of p", d, basic("guest", "guest-pw-1"), http.StatusOK},
		{"outsider", d, basic("outsider", "outsider-pw-1"), http.StatusNotFound},
		{"outsider by tag", "p/team/app:latest", basic("outsider", "outsider-pw-1"), http.StatusNotFound},
		{"anonymous", d, "", http.StatusUnauthorized},
		{"robot, Basic", d, basic(rb.Name, rb.Secret), http.StatusOK},
		{"robot, bearer", d, token(rb.Name, rb.Secret), http.StatusOK},
		{"robot, bearer, url-safe base64", d, "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(rb.Name+":"+rb.Secret)), http.StatusOK},
		{"robot, bearer, wrong secret", d, token(rb.Name, "wrong"), http.StatusUnauthorized},
		{"user credentials as bearer", d, token("guest", "guest-pw-1"), http.StatusUnauthorized},
		{"garbage bearer", d, "Bearer !!!", http.StatusUnauthorized},
	} {
		code, body := getImage(t, e, tc.ref, "", tc.auth)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	// A disabled robot is refused at once.
	if _, err := e.admin.UpdateRobot(ctx, rb.Name, api.UpdateRobotRequest{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if code, body := getImage(t, e, d, "", token(rb.Name, rb.Secret)); code != http.StatusUnauthorized {
		t.Errorf("disabled robot: %d %s", code, body)
	}
}

func ptr[T any](v T) *T { return &v }

// TestImageVulnerabilitiesUnknownSeverity: a finding nobody rated keeps
// its Unknown rating and gets a second one at ?unknownAs (critical by
// default), so the seed's jq counts it as customs gate does; with
// unknownAs=ignore it has the Unknown rating only.
func TestImageVulnerabilitiesUnknownSeverity(t *testing.T) {
	e := newScanEnv(t)
	e.setReport(e.digest, &report.Report{Status: report.StatusDone, Counts: report.Counts{Unknown: 1}, Findings: []report.Finding{
		report.FromMatch(match.Finding{AdvisoryID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"}, Status: match.StatusFixed,
			Fixed: []string{"1.1.20-r5"}, Severity: severity.UnknownRating(),
			Package: inventory.Package{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4"}})}})
	severities := func(query string) []string {
		t.Helper()
		code, body := getImage(t, e, e.digest.String(), query, basic("admin", adminPW))
		var iv api.ImageVulnerabilities
		if err := json.Unmarshal(body, &iv); err != nil || code != http.StatusOK || len(iv.Packages) != 1 {
			t.Fatalf("?%s: %d %v %s", query, code, err, body)
		}
		v := iv.Packages[0].Vulnerabilities[0]
		if v.CVEID != "CVE-2019-14697" || iv.Counts.Unknown != 1 {
			t.Errorf("CVEID %q, counts %+v", v.CVEID, iv.Counts)
		}
		var out []string
		for _, r := range v.Ratings {
			out = append(out, r.Severity+"/"+r.Method)
		}
		return out
	}
	for _, tc := range []struct{ query, want string }{
		{"", "Unknown/unknown Critical/unknownAs"},
		{"unknownAs=medium", "Unknown/unknown Medium/unknownAs"},
		{"unknownAs=ignore", "Unknown/unknown"},
	} {
		if got := strings.Join(severities(tc.query), " "); got != tc.want {
			t.Errorf("?%s: ratings %s, want %s", tc.query, got, tc.want)
		}
	}
}

// TestRobotBearer: only base64 robot credentials become Basic ones.
func TestRobotBearer(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{enc("robot$p+ci:s3cret"), true},
		{base64.RawURLEncoding.EncodeToString([]byte("robot$ci:s3cret")), true},
		{enc("alice:password"), false},
		{enc("robot$:s3cret"), false},
		{enc("robot$p+ci:"), false},
		{enc("robot$p+ci"), false},
		{enc("robot$p+ci:a\nb"), false},
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", false},
		{"", false},
		{"%%%", false},
	} {
		got, ok := api.RobotBearer(tc.in)
		if ok != tc.ok {
			t.Errorf("RobotBearer(%q) ok %v, want %v", tc.in, ok, tc.ok)
		}
		if ok {
			b, err := base64.StdEncoding.DecodeString(got)
			if err != nil || !strings.HasPrefix(string(b), "robot$") {
				t.Errorf("RobotBearer(%q) = %q, not base64 robot credentials", tc.in, got)
			}
		}
	}
}

// FuzzRobotBearer: any bearer value either is refused or yields standard
// base64 of "robot$NAME:SECRET" without line breaks.
func FuzzRobotBearer(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte("robot$p+ci:s3cret")))
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	f.Add("")
	f.Add("cm9ib3Qk")
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := api.RobotBearer(in)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q but returned %q", in, got)
			}
			return
		}
		b, err := base64.StdEncoding.DecodeString(got)
		if err != nil {
			t.Fatalf("RobotBearer(%q) = %q: %v", in, got, err)
		}
		name, secret, found := strings.Cut(string(b), ":")
		if !found || !strings.HasPrefix(name, "robot$") || len(name) == len("robot$") || secret == "" || strings.ContainsAny(string(b), "\r\n\x00") {
			t.Fatalf("RobotBearer(%q) accepted %q", in, b)
		}
	})
}

// FuzzParseImageRef: no input panics; what is accepted is a bare digest,
// or a repository with a project and a tag or digest that put back
// together give the input.
func FuzzParseImageRef(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "p/team/app:latest", "p/app@sha256:" + strings.Repeat("0", 64),
		"p/app", "app:1", "P/App:1", "p/app:", "p/app@sha256:zz", "a/b/c:d:e", "localhost:5000/p/app:1", "p/../x:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		repo, ref, err := api.ParseImageRef(s)
		if err != nil {
			if apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("ParseImageRef(%q): %v is not EINVALID", s, err)
			}
			return
		}
		if repo == "" {
			if _, err := digest.Parse(ref); err != nil || ref != s {
				t.Fatalf("ParseImageRef(%q) = digest %q", s, ref)
			}
			return
		}
		if !strings.Contains(repo, "/") || ref == "" || (repo+":"+ref != s && repo+"@"+ref != s) {
			t.Fatalf("ParseImageRef(%q) = %q, %q", s, repo, ref)
		}
	})
}

func TestParseImageRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct{ in, repo, ref string }{
		{d, "", d},
		{"p/team/app:latest", "p/team/app", "latest"},
		{"p/app@" + d, "p/app", d},
		{"p/app", "", ""},
		{"app:1", "", ""},
		{"P/App:1", "", ""},
		{"p/app:", "", ""},
		{"p/app@sha256:zz", "", ""},
		{"p/../x:1", "", ""},
		{"p/app:bad tag", "", ""},
	} {
		repo, ref, err := api.ParseImageRef(tc.in)
		if (tc.ref == "") != (err != nil) || repo != tc.repo || ref != tc.ref {
			t.Errorf("ParseImageRef(%q) = %q, %q, %v; want %q, %q", tc.in, repo, ref, err, tc.repo, tc.ref)
		}
	}
}
