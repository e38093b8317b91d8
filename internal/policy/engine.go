package policy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// DefaultRegoTimeout bounds one evaluation of a policy's Rego modules when
// Config.RegoTimeout is zero.
const DefaultRegoTimeout = 200 * time.Millisecond

// DefaultSuggestedExpiry is the --expires a suggested allowlist command
// carries when Config.SuggestedExpiry is empty.
const DefaultSuggestedExpiry = "30d"

// Config configures an Engine.
type Config struct {
	// Default is the outcome for an image no policy matches: Denied
	// (also when empty) or Allowed.
	Default Outcome
	// Now is the clock allowlist expiries are compared with; nil means
	// time.Now.
	Now func() time.Time
	// RegoTimeout bounds each Rego evaluation (DefaultRegoTimeout when
	// zero); a module that runs longer fails closed.
	RegoTimeout time.Duration
	// SuggestedExpiry is the --expires of suggested allowlist commands
	// ("30d" when empty).
	SuggestedExpiry string
}

// Validate checks c and names the bad field.
func (c *Config) Validate() error {
	switch c.Default {
	case "", Allowed, Denied:
	default:
		return fmt.Errorf("policy config: default %q is not one of allowed, denied", c.Default)
	}
	if c.RegoTimeout < 0 {
		return fmt.Errorf("policy config: regoTimeout %v is negative", c.RegoTimeout)
	}
	return nil
}

// Engine evaluates a fixed set of policies. It is immutable and safe for
// concurrent use.
type Engine struct {
	cfg      Config
	revision string
	policies []*compiled

	// Indexes for selection (see selectPolicies).
	byNamespace map[string][]*compiled
	byEnv       map[string][]*compiled
	general     []*compiled // runtime policies with neither namespaces nor environments
	byProject   map[string][]*compiled
	byKey       map[string]*compiled // by revision and content hash, for Update
}

// compiled is one policy ready to evaluate.
type compiled struct {
	p       *Policy
	ref     PolicyRef
	mode    Mode
	project bool // a project policy: scope.projects is set
	level   int  // runtime rank: 2 namespaces, 1 environments, 0 neither
	both    bool // both namespaces and environments are set
	repos   []*namePattern

	// modes are the effective mode of each rule.
	modes map[Rule]Mode

	allowed, denied []*namePattern
	tags            *TagsRule
	nameRe          *regexp.Regexp
	vuln            *VulnerabilitiesRule
	inline          []allowEntry
	sig             *SignaturesRule
	signerKeys      []string // key fingerprints, parallel to sig.Signers ("" for keyless)
	rego            *regoProgram
}

// Compile checks the policies and prepares them for evaluation, Rego
// modules included (compiled here, not per evaluation). Policy names must
// be unique. Errors name the policy and the field.
func Compile(policies []*Policy, cfg Config) (*Engine, error) {
	return compileEngine(nil, policies, cfg)
}

// Update compiles policies as Compile does, reusing e's compiled form of
// every policy whose content and revision are unchanged, so that a policy's
// Rego modules are compiled once per policy revision rather than once per
// engine. e is not changed.
func (e *Engine) Update(policies []*Policy, cfg Config) (*Engine, error) {
	return compileEngine(e, policies, cfg)
}

func compileEngine(prev *Engine, policies []*Policy, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Default == "" {
		cfg.Default = Denied
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RegoTimeout == 0 {
		cfg.RegoTimeout = DefaultRegoTimeout
	}
	if cfg.SuggestedExpiry == "" {
		cfg.SuggestedExpiry = DefaultSuggestedExpiry
	}
	e := &Engine{
		cfg:         cfg,
		byNamespace: map[string][]*compiled{},
		byEnv:       map[string][]*compiled{},
		byProject:   map[string][]*compiled{},
		byKey:       map[string]*compiled{},
	}
	h := sha256.New()
	fmt.Fprintf(h, "default=%s rego=%v expiry=%q\n", cfg.Default, cfg.RegoTimeout, cfg.SuggestedExpiry)
	seen := map[string]bool{}
	var errs []error
	for _, p := range policies {
		if p == nil {
			errs = append(errs, errors.New("policy: nil policy"))
			continue
		}
		if seen[p.Metadata.Name] {
			errs = append(errs, fmt.Errorf("policy %q: defined twice", p.Metadata.Name))
			continue
		}
		seen[p.Metadata.Name] = true
		b, err := json.Marshal(p)
		if err != nil {
			// A value out of range: compiling names the field.
			if _, cerr := compilePolicy(p); cerr != nil {
				err = cerr
			} else {
				err = fmt.Errorf("policy %q: %v", p.Metadata.Name, err)
			}
			errs = append(errs, err)
			continue
		}
		sum := sha256.Sum256(b)
		key := fmt.Sprintf("%d %x", p.Revision, sum)
		c := prev.reusable(key)
		if c == nil {
			if c, err = compilePolicy(p); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		fmt.Fprintf(h, "%s\n", key)
		e.policies = append(e.policies, c)
		e.byKey[key] = c
		e.index(c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e.revision = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return e, nil
}

// reusable returns e's compiled policy with the given content key; nil for
// a nil engine or an unknown key.
func (e *Engine) reusable(key string) *compiled {
	if e == nil {
		return nil
	}
	return e.byKey[key]
}

// Revision identifies the engine's policies and configuration (not the
// clock): equal revisions decide alike. It is part of the cache key.
func (e *Engine) Revision() string { return e.revision }

// Config returns the configuration in effect, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Policies returns the compiled policies in the order given to Compile.
func (e *Engine) Policies() []*Policy {
	out := make([]*Policy, len(e.policies))
	for i, c := range e.policies {
		out[i] = c.p
	}
	return out
}

func (e *Engine) index(c *compiled) {
	s := c.p.Spec.Scope
	switch {
	case c.project:
		for _, p := range s.Projects {
			e.byProject[p] = append(e.byProject[p], c)
		}
	case len(s.Namespaces) > 0:
		for _, n := range s.Namespaces {
			e.byNamespace[n] = append(e.byNamespace[n], c)
		}
	case len(s.Environments) > 0:
		for _, n := range s.Environments {
			e.byEnv[n] = append(e.byEnv[n], c)
		}
	default:
		e.general = append(e.general, c)
	}
}

// compilePolicy checks p again (it may be built in code) and compiles its
// patterns, expressions, keys and Rego modules.
func compilePolicy(p *Policy) (*compiled, error) {
	name := p.Metadata.Name
	fail := func(path string, err error) error {
		return fmt.Errorf("policy %q: %s: %v", name, path, err)
	}
	if p.APIVersion != APIVersion || p.Kind != Kind {
		return nil, fail("apiVersion/kind", fmt.Errorf("%s/%s is not %s/%s", p.APIVersion, p.Kind, APIVersion, Kind))
	}
	if err := checkPolicyName(name); err != nil {
		return nil, fail("metadata.name", err)
	}
	s := &p.Spec
	c := &compiled{p: p, mode: s.Mode}
	if c.mode == "" {
		c.mode = Enforce
	}
	switch c.mode {
	case Enforce, Warn, Audit:
	default:
		return nil, fail("spec.mode", fmt.Errorf("%q is not one of enforce, warn, audit", s.Mode))
	}
	c.modes = map[Rule]Mode{}
	for _, rm := range []struct {
		rule Rule
		set  bool
		mode Mode
	}{
		{RuleRegistries, s.Registries != nil, s.Registries.ruleMode()},
		{RuleTags, s.Tags != nil, s.Tags.ruleMode()},
		{RuleNames, s.Names != nil, s.Names.ruleMode()},
		{RuleVulnerabilities, s.Vulnerabilities != nil, s.Vulnerabilities.ruleMode()},
		{RuleSignatures, s.Signatures != nil, s.Signatures.ruleMode()},
		{RuleRego, s.Rego != nil, s.Rego.ruleMode()},
	} {
		if !rm.set {
			continue
		}
		switch rm.mode {
		case "":
			c.modes[rm.rule] = c.mode
		case Enforce, Warn, Audit:
			c.modes[rm.rule] = rm.mode
		default:
			return nil, fail("spec."+string(rm.rule)+".mode", fmt.Errorf("%q is not one of enforce, warn, audit", rm.mode))
		}
	}
	sc := s.Scope
	for _, l := range []struct {
		path  string
		list  []string
		check func(string) error
	}{
		{"spec.scope.environments", sc.Environments, checkEnvironment},
		{"spec.scope.namespaces", sc.Namespaces, checkNamespace},
		{"spec.scope.projects", sc.Projects, checkProject},
	} {
		for i, v := range l.list {
			if err := l.check(v); err != nil {
				return nil, fail(fmt.Sprintf("%s[%d]", l.path, i), err)
			}
		}
	}
	var err error
	if c.repos, err = compilePatterns("spec.scope.repositories", sc.Repositories); err != nil {
		return nil, fail("", err)
	}
	c.project = len(sc.Projects) > 0
	switch {
	case len(sc.Namespaces) > 0:
		c.level = 2
	case len(sc.Environments) > 0:
		c.level = 1
	}
	c.both = len(sc.Namespaces) > 0 && len(sc.Environments) > 0
	c.ref = PolicyRef{Name: name, Revision: p.Revision, Scope: sc, Project: c.project}

	if r := s.Registries; r != nil {
		if c.allowed, err = compilePatterns("spec.registries.allowed", r.Allowed); err != nil {
			return nil, fail("", err)
		}
		if c.denied, err = compilePatterns("spec.registries.denied", r.Denied); err != nil {
			return nil, fail("", err)
		}
	}
	if t := s.Tags; t != nil {
		for i, d := range t.Deny {
			if err := checkTagPattern(d); err != nil {
				return nil, fail(fmt.Sprintf("spec.tags.deny[%d]", i), err)
			}
		}
		c.tags = t
	}
	if n := s.Names; n != nil {
		if c.nameRe, err = compileNameRegexp(n.Pattern); err != nil {
			return nil, fail("spec.names.pattern", err)
		}
	}
	if v := s.Vulnerabilities; v != nil {
		if v.MaxSeverity != nil && (*v.MaxSeverity < None || *v.MaxSeverity > Critical) {
			return nil, fail("spec.vulnerabilities.maxSeverity", fmt.Errorf("%v is not one of %s", *v.MaxSeverity, thresholdWords))
		}
		if v.UnknownAs != nil && (Severity(*v.UnknownAs) < Unknown || Severity(*v.UnknownAs) > Critical) {
			return nil, fail("spec.vulnerabilities.unknownAs", fmt.Errorf("%d is not one of %s", *v.UnknownAs, unknownAsWords))
		}
		from := "policy " + name
		if len(sc.Projects) == 1 && name == ProjectPolicyName(sc.Projects[0]) {
			from = "project " + sc.Projects[0] + " allowlist"
		}
		for i := range v.Allowlist {
			a, err := compileEntry(&v.Allowlist[i], from)
			if err != nil {
				return nil, fail(fmt.Sprintf("spec.vulnerabilities.allowlist[%d]", i), err)
			}
			c.inline = append(c.inline, a)
		}
		c.vuln = v
	}
	if sg := s.Signatures; sg != nil {
		for i, sn := range sg.Signers {
			fp, err := checkSigner(sn)
			if err != nil {
				return nil, fail(fmt.Sprintf("spec.signatures.signers[%d]", i), err)
			}
			c.signerKeys = append(c.signerKeys, fp)
		}
		c.sig = sg
	}
	if r := s.Rego; r != nil {
		if len(r.Modules) == 0 {
			return nil, fail("spec.rego.modules", errors.New("no modules"))
		}
		if errs := compileRegoErrors(cmp.Or(p.Source, "policy "+name), "spec.rego.modules", r.Modules); len(errs) > 0 {
			return nil, fmt.Errorf("policy %q: %w", name, errors.Join(errs...))
		}
		if c.rego, err = prepareRego(r.Modules); err != nil {
			return nil, fail("spec.rego", err)
		}
	}
	return c, nil
}

func compilePatterns(path string, list []string) ([]*namePattern, error) {
	out := make([]*namePattern, 0, len(list))
	for i, s := range list {
		np, err := compileNamePattern(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %v", path, i, err)
		}
		out = append(out, np)
	}
	return out, nil
}

// compileNameRegexp compiles a names pattern, anchored at both ends.
func compileNameRegexp(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, errors.New("pattern is empty")
	}
	if len(p) > 1024 {
		return nil, fmt.Errorf("pattern is %d bytes, more than 1024", len(p))
	}
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid regular expression: %v", p, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

// evalState is one evaluation's working data.
type evalState struct {
	ctx   context.Context
	in    *Input
	img   Image // normalised
	subj  subject
	now   time.Time
	rego  ast.Value // built on first use
	notes []string
	until time.Time
}

func (st *evalState) note(format string, args ...any) {
	st.notes = append(st.notes, fmt.Sprintf(format, args...))
}

// relyOn records that the decision depends on an allowlist entry that
// expires at t.
func (st *evalState) relyOn(t *time.Time) {
	if t != nil && (st.until.IsZero() || t.Before(st.until)) {
		st.until = *t
	}
}

// Evaluate decides about in. It selects two policies (docs/policy.md,
// "Scopes and precedence"):
//
//   - the runtime policy: among policies without scope.projects that match,
//     the most specific — a namespace policy over an environment policy over
//     the cluster-wide default; at equal rank, one that also names the
//     environment, then the most specific matching repository glob, over
//     one without repositories;
//   - the project policy: among policies with scope.projects that match
//     Input.Project, the one with the most specific matching repository
//     glob, over one without repositories.
//
// Policies tied at the top rank all apply. The image must pass every
// applied policy: a project administrator cannot loosen the cluster's
// runtime policy and the cluster cannot loosen a project's. When neither
// kind matches, Config.Default decides.
//
// ctx bounds Rego evaluation (with Config.RegoTimeout). The error is for an
// invalid Input only (it names the field); every other failure is a
// fail-closed decision. Evaluate does not modify in.
func (e *Engine) Evaluate(ctx context.Context, in *Input) (*Decision, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	st := &evalState{ctx: ctx, in: in, img: in.Image, now: e.cfg.Now()}
	st.img.Registry, st.img.Repository = canonicalName(st.img.Registry, st.img.Repository)
	st.subj = newSubject(&st.img)
	d := &Decision{Image: st.img.String()}

	applied := e.selectPolicies(st)
	if len(applied) == 0 {
		e.defaultDecision(st, d)
		return d, nil
	}
	for _, c := range applied {
		d.Policies = append(d.Policies, c.ref)
		d.Violations = append(d.Violations, e.evalPolicy(st, c)...)
	}
	d.Notes = st.notes
	d.ValidUntil = st.until
	d.Outcome = Allowed
	for _, want := range []Mode{Enforce, Warn} {
		for i := range d.Violations {
			v := &d.Violations[i]
			if v.Mode == want {
				d.Outcome = Denied
				if want == Warn {
					d.Outcome = Warned
				}
				ref := v.Policy
				d.Policy, d.Rule, d.Mode = &ref, v.Rule, v.Mode
				break
			}
		}
		if d.Outcome != Allowed {
			break
		}
	}
	if d.Outcome == Allowed {
		ref := applied[0].ref
		d.Policy, d.Mode = &ref, applied[0].mode
	}
	for _, c := range applied {
		if a := c.p.Spec.Admission; a != nil && a.Mutate != nil && !*a.Mutate {
			d.NoMutate = true
		}
	}
	return d, nil
}

func (e *Engine) defaultDecision(st *evalState, d *Decision) {
	d.Default = true
	d.Rule = RuleDefault
	d.Outcome = e.cfg.Default
	where := []string{}
	for _, kv := range [][2]string{{"environment", st.in.Environment}, {"namespace", st.in.Namespace}, {"project", st.in.Project}} {
		if kv[1] != "" {
			where = append(where, fmt.Sprintf("%s %q", kv[0], kv[1]))
		}
	}
	ctx := ""
	if len(where) > 0 {
		ctx = " in " + strings.Join(where, ", ")
	}
	if d.Outcome == Denied {
		d.Violations = []Violation{{
			Rule:    RuleDefault,
			Mode:    Enforce,
			Message: fmt.Sprintf("No policy applies to %s%s, and the default is to deny.", d.Image, ctx),
			Remedy:  "apply a policy whose scope matches the image (customs policy apply)",
		}}
		d.Violations[0].Message += " To allow, " + d.Violations[0].Remedy + "."
	}
}

// rank orders matching policies of one kind; larger is more specific.
type rank [3]int

func (a rank) less(b rank) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// matches reports whether c's scope matches the input, and the
// specificity of its best matching repository glob (-1 without
// repositories).
func (c *compiled) matches(st *evalState) (bool, int) {
	s := &c.p.Spec.Scope
	if len(s.Environments) > 0 && !slices.Contains(s.Environments, st.in.Environment) {
		return false, 0
	}
	if len(s.Namespaces) > 0 && !slices.Contains(s.Namespaces, st.in.Namespace) {
		return false, 0
	}
	if len(s.Projects) > 0 && !slices.Contains(s.Projects, st.in.Project) {
		return false, 0
	}
	if len(c.repos) == 0 {
		return true, -1
	}
	best := -2
	for _, r := range c.repos {
		if r.match(&st.subj) && r.specificity > best {
			best = r.specificity
		}
	}
	return best > -2, best
}

// selectPolicies returns the applied policies: the top-ranked runtime
// policies, then the top-ranked project policies.
func (e *Engine) selectPolicies(st *evalState) []*compiled {
	var out []*compiled
	pick := func(cands [][]*compiled, rankOf func(c *compiled, repo int) rank) {
		var top rank
		var best []*compiled
		for _, list := range cands {
			for _, c := range list {
				ok, repo := c.matches(st)
				if !ok {
					continue
				}
				r := rankOf(c, repo)
				switch {
				case best == nil || top.less(r):
					top, best = r, append(best[:0], c)
				case !r.less(top):
					if !slices.Contains(best, c) {
						best = append(best, c)
					}
				}
			}
		}
		out = append(out, best...)
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	var runtime [][]*compiled
	if st.in.Namespace != "" {
		runtime = append(runtime, e.byNamespace[st.in.Namespace])
	}
	if st.in.Environment != "" {
		runtime = append(runtime, e.byEnv[st.in.Environment])
	}
	runtime = append(runtime, e.general)
	pick(runtime, func(c *compiled, repo int) rank { return rank{c.level, b(c.both), repo} })
	if st.in.Project != "" {
		pick([][]*compiled{e.byProject[st.in.Project]}, func(c *compiled, repo int) rank {
			return rank{repo, c.level, b(c.both)}
		})
	}
	return out
}

// evalPolicy evaluates every rule of c.
func (e *Engine) evalPolicy(st *evalState, c *compiled) []Violation {
	var vs []Violation
	add := func(rule Rule, msg, remedy string) *Violation {
		vs = append(vs, Violation{Policy: c.ref, Mode: c.modes[rule], Rule: rule, Message: msg, Remedy: remedy})
		return &vs[len(vs)-1]
	}
	e.evalRegistries(st, c, add)
	e.evalNames(st, c, add)
	e.evalTags(st, c, add)
	if st.in.External && st.in.Signatures == nil {
		e.evalExternal(st, c, add, RuleSignatures)
	} else {
		e.evalSignatures(st, c, add)
	}
	if st.in.External && st.in.Scan == nil {
		e.evalExternal(st, c, add, RuleVulnerabilities)
	} else if c.vuln != nil {
		if v := e.evalVulnerabilities(st, c); v != nil {
			vs = append(vs, *v)
		}
	}
	e.evalRego(st, c, add)
	return vs
}

// evalExternal applies c's externalImages setting where its signatures or
// vulnerabilities rule (rule) would need what an image customs does not
// hold has not: verified signatures, a scan.
func (e *Engine) evalExternal(st *evalState, c *compiled, add addFunc, rule Rule) {
	action := c.p.Spec.ExternalImages
	if action == "" {
		action = ExternalDeny
	}
	name := st.img.Name()
	check := func(rule Rule, what, needs string) {
		if action == ExternalAllow {
			st.note("%s is not in customs, so %s cannot be checked; %s allows such images (externalImages: allow).", name, what, c.ref.String())
			return
		}
		remedy := fmt.Sprintf("replicate the image into customs and use it from there, or set spec.externalImages: warn or allow in %s", c.ref.String())
		msg := fmt.Sprintf("%s is not in customs, so %s cannot be checked (externalImages: %s)", name, what, action)
		if rule == RuleVulnerabilities {
			// The vulnerabilities message is shown as is: it names its policy.
			msg = fmt.Sprintf("%s is not in customs, so %s cannot be checked, and %s %s (externalImages: %s). To allow, %s.", name, what, c.ref.String(), needs, action, remedy)
		}
		v := add(rule, msg, remedy)
		if action == ExternalWarn && v.Mode == Enforce {
			v.Mode = Warn
		}
	}
	if rule == RuleSignatures {
		if c.sig != nil && c.sig.Required {
			check(RuleSignatures, "its signatures", "requires a signature")
		}
		return
	}
	if r := c.vuln; r != nil && (r.ScanRequired() || r.MaxSeverity != nil) {
		needs := "requires a scan"
		if r.MaxSeverity != nil {
			needs = fmt.Sprintf("requires a scan (threshold: %q)", r.MaxSeverity.String())
		}
		check(RuleVulnerabilities, "its vulnerabilities", needs)
	}
}
