package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// RegoQuery is what a policy's Rego modules must define: a set of strings,
// each a reason to deny the image.
const RegoQuery = "data.customs.deny"

var regoDenyRef = ast.MustParseRef(RegoQuery)

// regoForbidden are the built-ins a policy module may not call: they do
// I/O, read the clock or randomness, or depend on the OPA process, so a
// decision would no longer depend on its input alone (and could not be
// cached or replayed offline).
var regoForbidden = []string{
	"http.send", "net.lookup_ip_addr", "opa.runtime", "rand.intn", "time.now_ns",
	"uuid.rfc4122", "io.jwt.decode_verify", "crypto.x509.parse_and_verify_certificates",
	"crypto.x509.parse_and_verify_certificates_with_options", "providers.aws.sign_req", "trace",
}

// regoCapabilities is the capability set modules are compiled against:
// this OPA's built-ins minus regoForbidden, and no network.
func regoCapabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	c.Builtins = slices.DeleteFunc(slices.Clone(c.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(regoForbidden, b.Name)
	})
	c.AllowNet = []string{}
	return c
}

// compileRegoErrors parses and compiles modules as Compile will, and
// returns each problem as a *ParseError on the policy file's line.
func compileRegoErrors(file, path string, mods []RegoModule) []error {
	caps := regoCapabilities()
	parsed := map[string]*ast.Module{}
	var errs []error
	for i, m := range mods {
		mod, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: caps})
		if err != nil {
			errs = append(errs, regoParseErrors(file, fmt.Sprintf("%s[%d].source", path, i), m, err)...)
			continue
		}
		parsed[m.Name] = mod
	}
	if len(errs) > 0 {
		return errs
	}
	comp := ast.NewCompiler().WithCapabilities(caps)
	comp.Compile(parsed)
	if comp.Failed() {
		for _, e := range comp.Errors {
			i := moduleIndex(mods, e.Location)
			if i < 0 {
				errs = append(errs, &ParseError{File: file, Path: path, Msg: "rego: " + e.Message})
				continue
			}
			errs = append(errs, regoParseErrors(file, fmt.Sprintf("%s[%d].source", path, i), mods[i], ast.Errors{e})...)
		}
		return errs
	}
	if len(comp.GetRules(regoDenyRef)) == 0 {
		line := 0
		if len(mods) > 0 {
			line = mods[0].line
		}
		errs = append(errs, &ParseError{File: file, Line: line, Path: path,
			Msg: "the modules define no " + RegoQuery + " (write `package customs` and `deny contains msg if { ... }`)"})
	}
	return errs
}

func moduleIndex(mods []RegoModule, loc *ast.Location) int {
	if loc == nil {
		return -1
	}
	for i, m := range mods {
		if m.Name == loc.File {
			return i
		}
	}
	return -1
}

// regoParseErrors maps OPA errors to ParseErrors on the file's lines.
func regoParseErrors(file, path string, m RegoModule, err error) []error {
	var aerrs ast.Errors
	if !errors.As(err, &aerrs) {
		return []error{&ParseError{File: file, Line: m.line, Path: path, Msg: "rego: " + err.Error()}}
	}
	out := make([]error, 0, len(aerrs))
	for _, e := range aerrs {
		line, msg := m.line, e.Message
		if e.Location != nil {
			if m.line > 0 {
				line = m.line + e.Location.Row
			}
			msg = fmt.Sprintf("%s line %d: %s", m.Name, e.Location.Row, e.Message)
		}
		out = append(out, &ParseError{File: file, Line: line, Path: path, Msg: "rego " + e.Code + ": " + msg})
	}
	return out
}

// regoProgram is a policy's modules, compiled once per policy revision.
type regoProgram struct {
	pq rego.PreparedEvalQuery
}

// prepareRego compiles mods into a query for data.customs.deny.
func prepareRego(mods []RegoModule) (*regoProgram, error) {
	opts := []func(*rego.Rego){
		rego.Query(RegoQuery),
		rego.Capabilities(regoCapabilities()),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.EnablePrintStatements(false),
	}
	for _, m := range mods {
		opts = append(opts, rego.Module(m.Name, m.Source))
	}
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		return nil, err
	}
	return &regoProgram{pq: pq}, nil
}

// eval runs the query on input within timeout and returns the deny
// messages, sorted. Any failure (an error, a timeout, a result that is not
// a set of strings) is an error: the caller fails closed.
func (p *regoProgram) eval(ctx context.Context, input ast.Value, timeout time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rs, err := p.pq.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("evaluation did not finish within %v", timeout)
		}
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil // deny is undefined: nothing to deny
	}
	set, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a set of strings, got %T", RegoQuery, rs[0].Expressions[0].Value)
	}
	msgs := make([]string, 0, len(set))
	for _, v := range set {
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			return nil, fmt.Errorf("%s must be a set of strings, but holds %s", RegoQuery, b)
		}
		msgs = append(msgs, s)
	}
	slices.Sort(msgs)
	return msgs, nil
}

// regoInput is the documented Rego input (docs/policy.md, "Rego input"):
// the Input as JSON, with the reference written out in image.reference and
// without the allowlists.
func regoInput(in *Input) ast.Value {
	str := ast.StringTerm
	img := ast.NewObject(
		ast.Item(str("reference"), str(in.Image.String())),
		ast.Item(str("name"), str(in.Image.Name())),
		ast.Item(str("registry"), str(in.Image.Registry)),
		ast.Item(str("repository"), str(in.Image.Repository)),
		ast.Item(str("tag"), str(in.Image.EffectiveTag())),
		ast.Item(str("digest"), str(in.Image.Digest)),
	)
	obj := ast.NewObject(
		ast.Item(str("image"), ast.NewTerm(img)),
		ast.Item(str("digest"), str(in.Digest)),
		ast.Item(str("environment"), str(in.Environment)),
		ast.Item(str("namespace"), str(in.Namespace)),
		ast.Item(str("project"), str(in.Project)),
	)
	if in.Scan == nil {
		obj.Insert(str("scan"), ast.NullTerm())
	} else {
		s := in.Scan
		c := s.Counts()
		counts := ast.NewObject(
			ast.Item(str("critical"), ast.IntNumberTerm(c.Critical)),
			ast.Item(str("high"), ast.IntNumberTerm(c.High)),
			ast.Item(str("medium"), ast.IntNumberTerm(c.Medium)),
			ast.Item(str("low"), ast.IntNumberTerm(c.Low)),
			ast.Item(str("none"), ast.IntNumberTerm(c.None)),
			ast.Item(str("unknown"), ast.IntNumberTerm(c.Unknown)),
		)
		fs := make([]*ast.Term, len(s.Findings))
		for i := range s.Findings {
			f := &s.Findings[i]
			aliases := make([]*ast.Term, len(f.Aliases))
			for j, a := range f.Aliases {
				aliases[j] = str(a)
			}
			fixed := make([]*ast.Term, len(f.Fixed))
			for j, v := range f.Fixed {
				fixed[j] = str(v)
			}
			fs[i] = ast.ObjectTerm(
				ast.Item(str("id"), str(f.ID)),
				ast.Item(str("aliases"), ast.ArrayTerm(aliases...)),
				ast.Item(str("package"), str(f.Package)),
				ast.Item(str("sourcePackage"), str(f.SourcePackage)),
				ast.Item(str("installed"), str(f.Installed)),
				ast.Item(str("fixed"), ast.ArrayTerm(fixed...)),
				ast.Item(str("severity"), str(f.Severity.String())),
				ast.Item(str("status"), str(string(f.EffectiveStatus()))),
			)
		}
		obj.Insert(str("scan"), ast.ObjectTerm(
			ast.Item(str("status"), str(string(s.Status))),
			ast.Item(str("reason"), str(s.Reason)),
			ast.Item(str("vulndbRevision"), ast.NumberTerm(json.Number(strconv.FormatInt(s.VulnDBRevision, 10)))),
			ast.Item(str("counts"), ast.NewTerm(counts)),
			ast.Item(str("findings"), ast.ArrayTerm(fs...)),
		))
	}
	if in.Signatures == nil {
		obj.Insert(str("signatures"), ast.NullTerm())
	} else {
		vs := make([]*ast.Term, len(in.Signatures.Verified))
		for i, v := range in.Signatures.Verified {
			vs[i] = ast.ObjectTerm(
				ast.Item(str("keyFingerprint"), str(v.KeyFingerprint)),
				ast.Item(str("issuer"), str(v.Issuer)),
				ast.Item(str("subject"), str(v.Subject)),
			)
		}
		obj.Insert(str("signatures"), ast.ObjectTerm(ast.Item(str("verified"), ast.ArrayTerm(vs...))))
	}
	obj.Insert(str("external"), ast.BooleanTerm(in.External))
	ann := ast.NewObject()
	for k, v := range in.Annotations {
		ann.Insert(str(k), str(v))
	}
	obj.Insert(str("annotations"), ast.NewTerm(ann))
	return obj
}
