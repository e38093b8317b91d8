package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize is the largest policy file Parse reads.
const MaxFileSize = 1 << 20

// maxErrors is how many problems Parse reports before it stops.
const maxErrors = 50

// Parse reads the policy documents in data (YAML, several separated by
// "---"; empty documents are skipped). file names the source in errors and
// in Policy.Source. Every problem found is reported, each as a *ParseError,
// joined (errors.Join); with an error no Policy is returned. Unknown fields,
// wrong types, bad values, duplicate keys, YAML aliases and duplicate policy
// names are errors. Rego modules are compiled to check them, with errors on
// the file's lines.
func Parse(file string, data []byte) ([]*Policy, error) {
	if file == "" {
		file = "policy"
	}
	if len(data) > MaxFileSize {
		return nil, &ParseError{File: file, Msg: fmt.Sprintf("file is %d bytes, more than the %d a policy file may have", len(data), MaxFileSize)}
	}
	d := &decoder{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Policy
	names := map[string]int{}
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.errs = append(d.errs, yamlError(file, err))
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		p := d.policy(root)
		if p == nil {
			if len(d.errs) >= maxErrors {
				break
			}
			continue
		}
		p.Source = file
		if first, dup := names[p.Metadata.Name]; dup {
			d.fail(root, "metadata.name", "policy %q is defined twice (first on line %d)", p.Metadata.Name, first)
			continue
		}
		names[p.Metadata.Name] = root.Line
		out = append(out, p)
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return out, nil
}

var (
	policyName  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$`)
	namespaceRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	projectRe   = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
)

func checkPolicyName(s string) error {
	if len(s) > 253 || !policyName.MatchString(s) {
		return fmt.Errorf("%q is not a valid policy name (lower-case letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 253)", s)
	}
	return nil
}

func checkEnvironment(s string) error {
	if s == "" || len(s) > 253 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%q is not a valid environment name (non-empty, no spaces or control characters, at most 253 bytes)", s)
	}
	return nil
}

func checkNamespace(s string) error {
	if len(s) > 63 || !namespaceRe.MatchString(s) {
		return fmt.Errorf("%q is not a valid Kubernetes namespace name", s)
	}
	return nil
}

func checkProject(s string) error {
	if len(s) > 255 || !projectRe.MatchString(s) {
		return fmt.Errorf("%q is not a valid project name", s)
	}
	return nil
}

func checkNamePattern(s string) error {
	_, err := compileNamePattern(s)
	return err
}

func checkTagPattern(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%q is not a tag pattern (1 to 128 characters)", s)
	}
	for _, r := range s {
		if !(r == '*' || r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("tag pattern %q holds %q, which no tag can hold", s, r)
		}
	}
	return nil
}

// policy decodes one document.
func (d *decoder) policy(root *yaml.Node) *Policy {
	before := len(d.errs)
	p := &Policy{}
	var haveAPI, haveKind, haveMeta, haveSpec bool
	ok := d.fields(root, "", []string{"apiVersion", "kind", "metadata", "spec"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "apiVersion":
			haveAPI = true
			if s, ok := d.str(v, path); ok {
				if s != APIVersion {
					d.fail(v, path, "%q is not supported (want %s)", s, APIVersion)
				}
				p.APIVersion = s
			}
		case "kind":
			haveKind = true
			if s, ok := d.str(v, path); ok {
				if s != Kind {
					d.fail(v, path, "%q is not supported (want %s)", s, Kind)
				}
				p.Kind = s
			}
		case "metadata":
			haveMeta = true
			d.metadata(v, path, &p.Metadata)
		case "spec":
			haveSpec = true
			d.spec(v, path, &p.Spec)
		}
	})
	if !ok {
		return nil
	}
	if !haveAPI {
		d.fail(root, "apiVersion", "is required (%s)", APIVersion)
	}
	if !haveKind {
		d.fail(root, "kind", "is required (%s)", Kind)
	}
	if !haveMeta {
		d.fail(root, "metadata.name", "is required")
	}
	if !haveSpec {
		d.fail(root, "spec", "is required (an empty spec: {} allows everything in its scope)")
	}
	if len(d.errs) > before {
		return nil
	}
	return p
}

func (d *decoder) metadata(n *yaml.Node, path string, m *Metadata) {
	haveName := false
	ok := d.fields(n, path, []string{"name", "description", "annotations"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "name":
			haveName = true
			if s, ok := d.str(v, path); ok {
				if err := checkPolicyName(s); err != nil {
					d.fail(v, path, "%v", err)
				}
				m.Name = s
			}
		case "description":
			if s, ok := d.str(v, path); ok {
				m.Description = s
			}
		case "annotations":
			if v.Kind != yaml.MappingNode {
				d.fail(v, path, "must be a mapping of strings, got %s", kindName(v))
				return
			}
			m.Annotations = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, val := v.Content[i], v.Content[i+1]
				key, ok := d.str(k, path)
				if !ok {
					continue
				}
				if _, dup := m.Annotations[key]; dup {
					d.fail(k, join(path, key), "annotation is set twice")
					continue
				}
				if s, ok := d.str(val, join(path, key)); ok {
					m.Annotations[key] = s
				}
			}
		}
	})
	if ok && !haveName {
		d.fail(n, join(path, "name"), "is required")
	}
}

func (d *decoder) spec(n *yaml.Node, path string, s *Spec) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.fail(n, path, "must be a mapping, got null (write spec: {} to allow everything in scope)")
		return
	}
	var extNode *yaml.Node
	defer func() {
		if extNode != nil && s.ExternalImages != "" && s.Vulnerabilities == nil && (s.Signatures == nil || !s.Signatures.Required) {
			d.fail(extNode, join(path, "externalImages"), "has no effect without a vulnerabilities rule or a signatures requirement")
		}
	}()
	d.fields(n, path, []string{"scope", "mode", "registries", "tags", "names", "vulnerabilities", "signatures", "rego", "externalImages", "admission"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "externalImages":
			extNode = v
			if a, ok := d.str(v, path); ok {
				switch ExternalAction(a) {
				case ExternalDeny, ExternalWarn, ExternalAllow:
					s.ExternalImages = ExternalAction(a)
				default:
					d.fail(v, path, "%q is not one of deny, warn, allow", a)
				}
			}
		case "admission":
			a := &AdmissionSettings{}
			s.Admission = a
			d.fields(v, path, []string{"mutate"}, func(key string, v *yaml.Node, path string) {
				if b, ok := d.boolean(v, path); ok {
					a.Mutate = &b
				}
			})
		case "scope":
			d.scope(v, path, &s.Scope)
		case "mode":
			s.Mode = d.mode(v, path)
		case "registries":
			r := &RegistriesRule{}
			s.Registries = r
			d.fields(v, path, []string{"allowed", "denied", "mode"}, func(key string, v *yaml.Node, path string) {
				if key == "mode" {
					r.Mode = d.mode(v, path)
					return
				}
				l, _ := d.strings(v, path, checkNamePattern)
				if key == "allowed" {
					r.Allowed = l
					if len(l) == 0 && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
						d.fail(v, path, "an empty list would allow nothing; leave the field out to allow every registry")
					}
				} else {
					r.Denied = l
				}
			})
		case "tags":
			t := &TagsRule{}
			s.Tags = t
			d.fields(v, path, []string{"deny", "requireDigest", "mode"}, func(key string, v *yaml.Node, path string) {
				switch key {
				case "mode":
					t.Mode = d.mode(v, path)
				case "deny":
					t.Deny, _ = d.strings(v, path, checkTagPattern)
				case "requireDigest":
					t.RequireDigest, _ = d.boolean(v, path)
				}
			})
		case "names":
			nr := &NamesRule{}
			s.Names = nr
			have := false
			if d.fields(v, path, []string{"pattern", "mode"}, func(key string, v *yaml.Node, path string) {
				if key == "mode" {
					nr.Mode = d.mode(v, path)
					return
				}
				have = true
				if p, ok := d.str(v, path); ok {
					if _, err := compileNameRegexp(p); err != nil {
						d.fail(v, path, "%v", err)
					}
					nr.Pattern = p
				}
			}) && !have {
				d.fail(v, join(path, "pattern"), "is required")
			}
		case "vulnerabilities":
			s.Vulnerabilities = d.vulnerabilities(v, path)
		case "signatures":
			s.Signatures = d.signatures(v, path)
		case "rego":
			s.Rego = d.rego(v, path)
		}
	})
}

var singular = map[string]string{"environments": "environment", "namespaces": "namespace", "projects": "project", "repositories": "repository"}

func (d *decoder) scope(n *yaml.Node, path string, s *Scope) {
	d.fields(n, path, []string{"environments", "namespaces", "projects", "repositories"}, func(key string, v *yaml.Node, path string) {
		var check func(string) error
		switch key {
		case "environments":
			check = checkEnvironment
		case "namespaces":
			check = checkNamespace
		case "projects":
			check = checkProject
		case "repositories":
			check = checkNamePattern
		}
		l, ok := d.strings(v, path, check)
		if ok && len(l) == 0 {
			d.fail(v, path, "an empty list selects nothing; leave the field out to select every %s", singular[key])
			return
		}
		switch key {
		case "environments":
			s.Environments = l
		case "namespaces":
			s.Namespaces = l
		case "projects":
			s.Projects = l
		case "repositories":
			s.Repositories = l
		}
	})
}

// mode reads enforce, warn or audit.
func (d *decoder) mode(n *yaml.Node, path string) Mode {
	m, ok := d.str(n, path)
	if !ok {
		return ""
	}
	switch Mode(m) {
	case Enforce, Warn, Audit:
		return Mode(m)
	}
	d.fail(n, path, "%q is not one of enforce, warn, audit", m)
	return ""
}

func (d *decoder) severity(n *yaml.Node, path string) (Severity, bool) {
	w, ok := d.str(n, path)
	if !ok {
		return Unknown, false
	}
	s, err := ParseSeverity(w)
	if err != nil || s == Unknown {
		d.fail(n, path, "%q is not one of %s", w, thresholdWords)
		return Unknown, false
	}
	return s, true
}

func (d *decoder) vulnerabilities(n *yaml.Node, path string) *VulnerabilitiesRule {
	r := &VulnerabilitiesRule{}
	var lines = map[string]*yaml.Node{}
	ok := d.fields(n, path, []string{"maxSeverity", "requireScan", "allowUnscannable", "ignoreUnfixed", "unknownAs", "useSystemAllowlist", "allowlist", "mode"}, func(key string, v *yaml.Node, path string) {
		lines[key] = v
		switch key {
		case "mode":
			r.Mode = d.mode(v, path)
		case "maxSeverity":
			if s, ok := d.severity(v, path); ok {
				r.MaxSeverity = &s
			}
		case "requireScan":
			if b, ok := d.boolean(v, path); ok {
				r.RequireScan = &b
			}
		case "ignoreUnfixed":
			r.IgnoreUnfixed, _ = d.boolean(v, path)
		case "allowUnscannable":
			r.AllowUnscannable, _ = d.boolean(v, path)
		case "unknownAs":
			if w, ok := d.str(v, path); ok {
				var u UnknownAs
				if err := u.UnmarshalText([]byte(w)); err != nil {
					d.fail(v, path, "%q is not one of %s", w, unknownAsWords)
				} else {
					r.UnknownAs = &u
				}
			}
		case "useSystemAllowlist":
			if b, ok := d.boolean(v, path); ok {
				r.UseSystemAllowlist = &b
			}
		case "allowlist":
			r.Allowlist = d.allowlist(v, path)
		}
	})
	if !ok {
		return r
	}
	if v := lines["allowUnscannable"]; v != nil && !r.ScanRequired() {
		d.fail(v, join(path, "allowUnscannable"), "has no effect: the rule does not require a scan")
	}
	if r.MaxSeverity == nil {
		for _, k := range []string{"ignoreUnfixed", "unknownAs", "allowlist", "useSystemAllowlist"} {
			if v := lines[k]; v != nil {
				d.fail(v, join(path, k), "has no effect without maxSeverity")
			}
		}
		if lines["maxSeverity"] == nil && !r.ScanRequired() {
			d.fail(n, path, "needs maxSeverity or requireScan: true (without them the rule checks nothing)")
		}
	}
	return r
}

func (d *decoder) allowlist(n *yaml.Node, path string) []AllowlistEntry {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "must be a list, got %s", kindName(n))
		return nil
	}
	out := make([]AllowlistEntry, 0, len(n.Content))
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		var a AllowlistEntry
		haveID := false
		if !d.fields(e, ep, []string{"id", "package", "repository", "expires", "reason", "addedBy"}, func(key string, v *yaml.Node, path string) {
			switch key {
			case "id":
				haveID = true
				if s, ok := d.str(v, path); ok {
					if err := checkAdvisoryID(s); err != nil {
						d.fail(v, path, "%v", err)
					}
					a.ID = s
				}
			case "package":
				if s, ok := d.str(v, path); ok {
					if s == "" || strings.ContainsAny(s, " \t\n") {
						d.fail(v, path, "%q is not a package name", s)
					}
					a.Package = s
				}
			case "repository":
				if s, ok := d.str(v, path); ok {
					if err := checkNamePattern(s); err != nil {
						d.fail(v, path, "%v", err)
					}
					a.Repository = s
				}
			case "expires":
				if t, ok := d.time(v, path); ok {
					a.Expires = &t
				}
			case "reason":
				a.Reason, _ = d.str(v, path)
			case "addedBy":
				a.AddedBy, _ = d.str(v, path)
			}
		}) {
			continue
		}
		if !haveID {
			d.fail(e, join(ep, "id"), "is required (an advisory id or alias such as CVE-2019-14697)")
		}
		out = append(out, a)
	}
	return out
}

// checkAdvisoryID accepts the characters advisory ids are made of.
func checkAdvisoryID(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%q is not an advisory id", s)
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r == ':' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("%q is not an advisory id (it holds %q)", s, r)
		}
	}
	return nil
}

// time reads an expiry as ParseExpiry does.
func (d *decoder) time(n *yaml.Node, path string) (time.Time, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") {
		d.fail(n, path, "must be a date (2026-01-31) or an RFC 3339 time, got %s", kindName(n))
		return time.Time{}, false
	}
	t, err := ParseExpiry(n.Value)
	if err != nil {
		d.fail(n, path, "%v", err)
		return time.Time{}, false
	}
	return t, true
}

// ParseExpiry reads an allowlist expiry: an RFC 3339 time
// ("2026-01-31T12:00:00Z") or a date ("2026-01-31"), which means the start
// of that day in UTC.
func ParseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z)", s)
}

func (d *decoder) signatures(n *yaml.Node, path string) *SignaturesRule {
	r := &SignaturesRule{}
	haveReq := false
	ok := d.fields(n, path, []string{"required", "signers", "mode"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "mode":
			r.Mode = d.mode(v, path)
		case "required":
			haveReq = true
			r.Required, _ = d.boolean(v, path)
		case "signers":
			if v.Kind != yaml.SequenceNode {
				d.fail(v, path, "must be a list, got %s", kindName(v))
				return
			}
			for i, e := range v.Content {
				ep := fmt.Sprintf("%s[%d]", path, i)
				if s, ok := d.signer(e, ep); ok {
					r.Signers = append(r.Signers, s)
				}
			}
		}
	})
	if ok && !haveReq {
		d.fail(n, join(path, "required"), "is required (true to require a signature)")
	}
	return r
}

func (d *decoder) signer(n *yaml.Node, path string) (Signer, bool) {
	var s Signer
	var keyNode, keylessNode *yaml.Node
	before := len(d.errs)
	if !d.fields(n, path, []string{"name", "key", "keyless"}, func(key string, v *yaml.Node, path string) {
		switch key {
		case "name":
			s.Name, _ = d.str(v, path)
		case "key":
			keyNode = v
			if k, ok := d.str(v, path); ok {
				if _, err := parsePublicKey(k); err != nil {
					d.fail(v, path, "%v", err)
				}
				s.Key = k
			}
		case "keyless":
			keylessNode = v
			kl := &Keyless{}
			var haveIss, haveSub bool
			if d.fields(v, path, []string{"issuer", "subject"}, func(key string, v *yaml.Node, path string) {
				str, ok := d.str(v, path)
				if !ok {
					return
				}
				if key == "issuer" {
					haveIss = true
					if err := checkIssuer(str); err != nil {
						d.fail(v, path, "%v", err)
					}
					kl.Issuer = str
				} else {
					haveSub = true
					if str == "" || str == "*" {
						d.fail(v, path, "%q would accept anyone the issuer vouches for; name the identity (an email or URI, '*' for a run of characters)", str)
					}
					kl.Subject = str
				}
			}) {
				if !haveIss {
					d.fail(v, join(path, "issuer"), "is required")
				}
				if !haveSub {
					d.fail(v, join(path, "subject"), "is required")
				}
			}
			s.Keyless = kl
		}
	}) {
		return s, false
	}
	switch {
	case keyNode != nil && keylessNode != nil:
		d.fail(keylessNode, path, "a signer has either key or keyless, not both")
	case keyNode == nil && keylessNode == nil:
		d.fail(n, path, "a signer needs key (a PEM public key) or keyless (issuer and subject)")
	}
	return s, len(d.errs) == before
}

func (d *decoder) rego(n *yaml.Node, path string) *RegoRule {
	r := &RegoRule{}
	before := len(d.errs)
	haveMods := false
	var modsNode *yaml.Node
	ok := d.fields(n, path, []string{"modules", "mode"}, func(key string, v *yaml.Node, path string) {
		if key == "mode" {
			r.Mode = d.mode(v, path)
			return
		}
		haveMods = true
		modsNode = v
		if v.Kind != yaml.SequenceNode {
			d.fail(v, path, "must be a list, got %s", kindName(v))
			return
		}
		names := map[string]int{}
		for i, e := range v.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			var m RegoModule
			var haveName, haveSrc bool
			if !d.fields(e, ep, []string{"name", "source"}, func(key string, v *yaml.Node, path string) {
				s, ok := d.str(v, path)
				if !ok {
					return
				}
				if key == "name" {
					haveName = true
					if s == "" || strings.ContainsAny(s, "/\\ \t\n") {
						d.fail(v, path, "%q is not a module file name (no slashes or spaces)", s)
					}
					if first, dup := names[s]; dup {
						d.fail(v, path, "module %q is listed twice (first on line %d)", s, first)
					}
					names[s] = v.Line
					m.Name = s
				} else {
					haveSrc = true
					m.Source = s
					m.line = v.Line
					if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
						m.line--
					}
				}
			}) {
				continue
			}
			if !haveName {
				d.fail(e, join(ep, "name"), "is required")
			}
			if !haveSrc {
				d.fail(e, join(ep, "source"), "is required")
			}
			r.Modules = append(r.Modules, m)
		}
	})
	if !ok {
		return r
	}
	if !haveMods {
		d.fail(n, join(path, "modules"), "is required")
		return r
	}
	if len(d.errs) > before {
		return r
	}
	if len(r.Modules) == 0 || len(r.Modules) != len(modsNode.Content) {
		if len(modsNode.Content) == 0 {
			d.fail(modsNode, join(path, "modules"), "is empty; leave rego out instead")
		}
		return r
	}
	for _, e := range compileRegoErrors(d.file, join(path, "modules"), r.Modules) {
		if len(d.errs) < maxErrors {
			d.errs = append(d.errs, e)
		}
	}
	return r
}
