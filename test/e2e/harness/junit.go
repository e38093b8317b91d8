package harness

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
)

// JUnitCase is one test case of a JUnit XML report.
type JUnitCase struct {
	// Name is the case's full name (the conformance suite uses
	// "OCI Conformance Test/<group>/<step>").
	Name string
	// Status is "passed", "skipped", "failure" or "error".
	Status string
	// Message is the failure, error or skip message, if any.
	Message string
	// Out is the case's system-out (the conformance suite puts its errors
	// there) and Err its system-err (the requests and responses).
	Out, Err string
}

// Failed reports whether the case neither passed nor was skipped: a
// failure, an error, or a status this parser does not know (fail closed).
func (c JUnitCase) Failed() bool { return c.Status != "passed" && c.Status != "skipped" }

// JUnitReport is a parsed JUnit XML report.
type JUnitReport struct {
	Cases []JUnitCase
}

// Count returns how many cases have the given status.
func (r *JUnitReport) Count(status string) int {
	n := 0
	for _, c := range r.Cases {
		if c.Status == status {
			n++
		}
	}
	return n
}

// Failures returns the cases that Failed, sorted by name.
func (r *JUnitReport) Failures() []JUnitCase {
	var out []JUnitCase
	for _, c := range r.Cases {
		if c.Failed() {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type junitResult struct {
	Message string `xml:"message,attr"`
	Data    string `xml:",chardata"`
}

type junitCase struct {
	Name      string       `xml:"name,attr"`
	Status    string       `xml:"status,attr"`
	Skipped   *junitResult `xml:"skipped"`
	Failure   *junitResult `xml:"failure"`
	Error     *junitResult `xml:"error"`
	SystemOut string       `xml:"system-out"`
	SystemErr string       `xml:"system-err"`
}

type junitSuite struct {
	Name  string       `xml:"name,attr"`
	Cases []junitCase  `xml:"testcase"`
	Inner []junitSuite `xml:"testsuite"`
}

// ParseJUnit reads a JUnit XML report: a <testsuites> or a single
// <testsuite> root. A case's status is its status attribute, or derived
// from its <failure>, <error> or <skipped> child when the attribute is
// missing (or says "passed" next to a failure or error). A
// document with no test case at all is an error, so that an empty or
// truncated report is never mistaken for a clean run.
func ParseJUnit(r io.Reader) (*JUnitReport, error) {
	var root struct {
		XMLName xml.Name
		junitSuite
	}
	dec := xml.NewDecoder(r)
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("junit report: %w", err)
	}
	switch root.XMLName.Local {
	case "testsuites", "testsuite":
	default:
		return nil, fmt.Errorf("junit report: root element <%s>, want <testsuites> or <testsuite>", root.XMLName.Local)
	}
	rep := &JUnitReport{}
	var walk func(s junitSuite)
	walk = func(s junitSuite) {
		for _, c := range s.Cases {
			rep.Cases = append(rep.Cases, convertCase(c))
		}
		for _, in := range s.Inner {
			walk(in)
		}
	}
	walk(root.junitSuite)
	if len(rep.Cases) == 0 {
		return nil, fmt.Errorf("junit report: no test cases")
	}
	return rep, nil
}

func convertCase(c junitCase) JUnitCase {
	out := JUnitCase{Name: c.Name, Status: c.Status, Out: c.SystemOut, Err: c.SystemErr}
	// A <failure> or <error> child wins over a status attribute claiming
	// success: a report contradicting itself is not a pass.
	var res *junitResult
	switch {
	case c.Error != nil:
		res = c.Error
		if out.Status == "" || out.Status == "passed" {
			out.Status = "error"
		}
	case c.Failure != nil:
		res = c.Failure
		if out.Status == "" || out.Status == "passed" {
			out.Status = "failure"
		}
	case c.Skipped != nil:
		res = c.Skipped
		if out.Status == "" {
			out.Status = "skipped"
		}
	}
	if out.Status == "" {
		out.Status = "passed"
	}
	if res != nil {
		out.Message = res.Message
		if out.Message == "" {
			out.Message = res.Data
		}
	}
	return out
}
