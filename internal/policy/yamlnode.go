package policy

// The YAML node walking that policy parsing is built on: errors with the
// file, line and field path of each problem, unknown-field detection with
// "did you mean" suggestions, and typed scalar and list readers. parse.go
// holds the policy schema itself.

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseError is one problem in a policy file: where (file, line, the field's
// path such as spec.vulnerabilities.maxSeverity) and what.
type ParseError struct {
	File string
	Line int
	// Path is the field's path, "" for a problem with the file itself.
	Path string
	Msg  string
}

// Error formats "FILE:LINE: PATH: MSG".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(cmp.Or(e.File, "policy"))
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlParserErrors are libyaml's parser (not scanner) error messages.
// yaml.v3 reports their line 0-based (it adds one for scanner errors only),
// so yamlError adds one.
var yamlParserErrors = []string{
	"did not find expected <document start>", "did not find expected node content",
	"did not find expected key", "did not find expected '-' indicator",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

// yamlError turns a YAML syntax error into a ParseError with its line.
func yamlError(file string, err error) *ParseError {
	msg := err.Error()
	pe := &ParseError{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		pe.Line, _ = strconv.Atoi(m[1])
		pe.Msg = "invalid YAML: " + msg[len(m[0]):]
		if slices.Contains(yamlParserErrors, msg[len(m[0]):]) {
			pe.Line++
		}
	}
	return pe
}

// decoder walks yaml.Nodes, collecting errors with lines and paths.
type decoder struct {
	file string
	errs []error
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &ParseError{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	if len(d.errs) == maxErrors {
		d.errs = append(d.errs, &ParseError{File: d.file, Line: line, Msg: "too many errors"})
	}
}

// kindName says what a node is, for "must be a ..., got ..." messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!timestamp":
			return "a timestamp (" + n.Value + ")"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		}
		return "a " + strings.TrimPrefix(n.Tag, "!!") + " (" + n.Value + ")"
	}
	return "something else"
}

// fields walks a mapping node: every key must be in known (error otherwise,
// with a suggestion), no key twice; f is called for each known key with the
// value and its path. It returns false when n is not a mapping.
func (d *decoder) fields(n *yaml.Node, path string, known []string, f func(key string, v *yaml.Node, path string)) bool {
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "YAML aliases are not supported in policies")
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping, got %s", kindName(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!merge") {
			d.fail(k, path, "keys must be strings, got %s", kindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			d.fail(k, path, "YAML merge keys (<<) are not supported in policies")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, kp, "field is set twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if !contains(known, k.Value) {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (known: " + strings.Join(known, ", ") + ")"
			}
			d.fail(k, path, "%s", msg)
			continue
		}
		if v.Kind == yaml.AliasNode {
			d.fail(v, kp, "YAML aliases are not supported in policies")
			continue
		}
		f(k.Value, v, kp)
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// suggest returns the known field closest to s when it is a plausible typo.
func suggest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(s), strings.ToLower(k)); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance (short strings only).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 10
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str reads a string scalar.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
			hint = " (quote it to make it a string)"
		}
		d.fail(n, path, "must be a string, got %s%s", kindName(n), hint)
		return "", false
	}
	return n.Value, true
}

// boolean reads true or false.
func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.fail(n, path, "must be true or false, got %s", kindName(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.fail(n, path, "must be true or false, got %q", n.Value)
		return false, false
	}
	return b, true
}

// strings reads a list of strings; check, when not nil, validates each.
func (d *decoder) strings(n *yaml.Node, path string, check func(string) error) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "must be a list, got %s", kindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	seen := map[string]int{}
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		s, good := d.str(e, ep)
		if !good {
			ok = false
			continue
		}
		if check != nil {
			if err := check(s); err != nil {
				d.fail(e, ep, "%v", err)
				ok = false
				continue
			}
		}
		if first, dup := seen[s]; dup {
			d.fail(e, ep, "%q is listed twice (first on line %d)", s, first)
			ok = false
			continue
		}
		seen[s] = e.Line
		out = append(out, s)
	}
	return out, ok
}
