package harness

import (
	"os"
	"strings"
	"testing"
)

func TestParseJUnit(t *testing.T) {
	conformance, err := os.ReadFile("testdata/conformance-junit.xml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                          string
		doc                           string
		wantErr                       string
		passed, failed, skipped       int
		wantFailure, wantFailureOut   string
		wantFailureErr, wantSkipMatch string
	}{
		{
			name:   "conformance suite report",
			doc:    string(conformance),
			passed: 1, failed: 1, skipped: 1,
			wantFailure:    "OCI Conformance Test/empty/referrers",
			wantFailureOut: "received 404",
			wantFailureErr: "~~~ REQUEST ~~~",
		},
		{
			name: "single suite root, status from children",
			doc: `<testsuite name="s">
  <testcase name="a"/>
  <testcase name="b"><failure message="boom">trace</failure></testcase>
  <testcase name="c"><skipped message="not supported"/></testcase>
  <testcase name="d"><error>crashed</error></testcase>
</testsuite>`,
			passed: 1, failed: 2, skipped: 1,
			wantFailure: "b",
		},
		{
			name:   "failure child beats passed attribute",
			doc:    `<testsuites><testsuite><testcase name="x" status="passed"><failure message="no"/></testcase></testsuite></testsuites>`,
			failed: 1, wantFailure: "x",
		},
		{
			name:   "nested suites",
			doc:    `<testsuites><testsuite><testsuite><testcase name="deep" status="failure"/></testsuite></testsuite><testcase name="top" status="passed"/></testsuites>`,
			passed: 1, failed: 1, wantFailure: "deep",
		},
		{
			name:   "unknown status is a failure",
			doc:    `<testsuite><testcase name="odd" status="flaky"/><testcase name="ok" status="passed"/></testsuite>`,
			passed: 1, failed: 1, wantFailure: "odd",
		},
		{name: "no cases", doc: `<testsuites><testsuite name="s"></testsuite></testsuites>`, wantErr: "no test cases"},
		{name: "empty document", doc: ``, wantErr: "EOF"},
		{name: "truncated", doc: `<testsuites><testsuite><testcase name="a" status="passed">`, wantErr: "unexpected EOF"},
		{name: "wrong root", doc: `<html><testcase name="a"/></html>`, wantErr: "root element <html>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := ParseJUnit(strings.NewReader(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			failures := rep.Failures()
			if got := rep.Count("passed"); got != tc.passed {
				t.Errorf("passed = %d, want %d", got, tc.passed)
			}
			if got := len(failures); got != tc.failed {
				t.Errorf("failures = %d, want %d", got, tc.failed)
			}
			if got := rep.Count("skipped"); got != tc.skipped {
				t.Errorf("skipped = %d, want %d", got, tc.skipped)
			}
			if tc.wantFailure != "" {
				if len(failures) == 0 || failures[0].Name != tc.wantFailure {
					t.Fatalf("first failure %+v, want %q", failures, tc.wantFailure)
				}
				if !strings.Contains(failures[0].Out, tc.wantFailureOut) {
					t.Errorf("failure system-out %q does not contain %q", failures[0].Out, tc.wantFailureOut)
				}
				if !strings.Contains(failures[0].Err, tc.wantFailureErr) {
					t.Errorf("failure system-err does not contain %q", tc.wantFailureErr)
				}
			}
		})
	}
}

func FuzzParseJUnit(f *testing.F) {
	conformance, err := os.ReadFile("testdata/conformance-junit.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(conformance))
	f.Add(`<testsuite><testcase name="b"><failure message="boom"/></testcase></testsuite>`)
	f.Add(`<testsuites><testsuite><testsuite><testcase name="d" status="error"/></testsuite></testsuite></testsuites>`)
	f.Fuzz(func(t *testing.T, doc string) {
		rep, err := ParseJUnit(strings.NewReader(doc))
		if err != nil {
			return
		}
		if len(rep.Cases) == 0 {
			t.Fatal("parsed a report with no cases without error")
		}
		total := 0
		for _, s := range []string{"passed", "skipped"} {
			total += rep.Count(s)
		}
		total += len(rep.Failures())
		for _, c := range rep.Cases {
			if c.Status == "" {
				t.Fatalf("case %q has no status", c.Name)
			}
		}
		if total != len(rep.Cases) {
			t.Fatalf("counts add up to %d of %d cases", total, len(rep.Cases))
		}
	})
}
