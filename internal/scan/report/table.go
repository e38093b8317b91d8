package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// EncodeTable writes r for people: a header naming the subject, distro
// and database revision; one line per finding in r's order (highest
// severity first) with severity, advisory id (and its CVE when the id is
// another), package, installed and fixed versions and the fix in words;
// the platforms of an image index; and the counts per severity.
//
// Every string that comes from the image or the advisories is cleaned of
// control characters, so a hostile package name cannot drive the
// terminal.
func EncodeTable(w io.Writer, r *Report, opts Options) error {
	opts = opts.withDefaults(r)
	bw := bufio.NewWriter(w)
	subject := clean(opts.Subject)
	if r.Digest != "" && r.Digest != opts.Subject {
		subject += " (" + clean(r.Digest) + ")"
	}
	fmt.Fprintf(bw, "%s\n", subject)
	var facts []string
	if r.Platform != "" {
		facts = append(facts, "platform "+clean(r.Platform))
	}
	if d := r.Distro; d != nil {
		name := d.PrettyName
		if name == "" {
			name = strings.TrimSpace(d.ID + " " + d.VersionID)
		}
		facts = append(facts, "distro "+clean(name))
	} else if r.Status == StatusDone && len(r.Manifests) == 0 {
		facts = append(facts, "no OS release found")
	}
	facts = append(facts, plural(r.Packages, "package"), fmt.Sprintf("vulnerability database revision %d", r.VulnDBRevision))
	fmt.Fprintf(bw, "%s\n", strings.Join(facts, ", "))
	if r.Status != StatusDone {
		line := "scan " + string(r.Status)
		if r.Reason != "" {
			line += ": " + clean(r.Reason)
		}
		fmt.Fprintf(bw, "%s\n", line)
	}

	if len(r.Manifests) > 0 {
		fmt.Fprintln(bw)
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PLATFORM\tDIGEST\tSTATUS\tPACKAGES\tFINDINGS")
		for _, m := range r.Manifests {
			status := string(m.Status)
			if m.Reason != "" {
				status += ": " + m.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", cell(m.Platform), cell(m.Digest), cell(status), m.Packages, countsText(m.Counts))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(r.Findings) > 0 {
		fmt.Fprintln(bw)
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tFIX")
		for _, f := range r.Findings {
			fixed := "-"
			if len(f.FixedVersions) > 0 {
				fixed = f.FixedVersions[0]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", severityText(f.Severity), cell(idText(f)), cell(f.Package.Name),
				cell(f.InstalledVersion), cell(fixed), cell(f.Fix))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "\n%s: %s\n", plural(r.Counts.Total(), "finding"), countsText(r.Counts))
	return bw.Flush()
}

// idText is the advisory id, followed by its first CVE alias when the id
// does not already name it.
func idText(f Finding) string {
	for _, a := range f.Aliases {
		if strings.HasPrefix(a, "CVE-") {
			if strings.Contains(f.AdvisoryID, a) {
				break
			}
			return f.AdvisoryID + " (" + a + ")"
		}
	}
	return f.AdvisoryID
}

// severityText is the level in capitals, with the CVSS score when there
// is one ("HIGH 7.5").
func severityText(r severity.Rating) string {
	s := strings.ToUpper(r.Level.String())
	if r.Vector != "" {
		s += " " + strconv.FormatFloat(r.Score, 'f', 1, 64)
	}
	return s
}

func countsText(c Counts) string {
	return fmt.Sprintf("%d critical, %d high, %d medium, %d low, %d none, %d unknown",
		c.Critical, c.High, c.Medium, c.Low, c.None, c.Unknown)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// clean replaces control and bidirectional-formatting characters with
// '?', so text from an image cannot move the cursor, recolour the
// terminal or reorder what is shown.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

// cell is clean for a table cell: tabs become spaces (they would split
// the cell) and an empty cell shows as "-".
func cell(s string) string {
	s = clean(strings.ReplaceAll(s, "\t", " "))
	if s == "" {
		return "-"
	}
	return s
}
