package report

import (
	"time"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

const (
	baseLayer = "sha256:1b9c4d5e8f0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4"
	appLayer  = "sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
)

// fixtureReport is a scan of an Alpine 3.9 image with a Go binary and a
// Python package: musl 1.1.20-r4 and musl-utils (one advisory, two
// packages, a CVE feed rating), golang.org/x/net in the binary (unrated,
// fixed), a PyPI package with no fix, and an advisory rated by CVSS v2
// only. Packages without findings and an exact duplicate are in the
// inventory too.
func fixtureReport() *Report {
	musl := inventory.Package{Ecosystem: inventory.Alpine, Name: "musl", Version: "1.1.20-r4",
		PURL: "pkg:apk/alpine/musl@1.1.20-r4?arch=x86_64&distro=3.9.6", Layer: baseLayer, Locations: []string{"lib/apk/db/installed"}}
	muslUtils := inventory.Package{Ecosystem: inventory.Alpine, Name: "musl-utils", Version: "1.1.20-r4", SourceName: "musl",
		PURL: "pkg:apk/alpine/musl-utils@1.1.20-r4?arch=x86_64&distro=3.9.6", Layer: baseLayer, Locations: []string{"lib/apk/db/installed"}}
	busybox := inventory.Package{Ecosystem: inventory.Alpine, Name: "busybox", Version: "1.29.3-r10",
		PURL: "pkg:apk/alpine/busybox@1.29.3-r10?arch=x86_64&distro=3.9.6", Layer: baseLayer, Locations: []string{"lib/apk/db/installed"}}
	xnet := inventory.Package{Ecosystem: inventory.Go, Name: "golang.org/x/net", Version: "0.0.0-20220722155237-a158d28d115b",
		PURL: "pkg:golang/golang.org/x/net@v0.0.0-20220722155237-a158d28d115b", Layer: appLayer, Locations: []string{"usr/local/bin/app"}}
	stdlib := inventory.Package{Ecosystem: inventory.Go, Name: "stdlib", Version: "1.20.1",
		PURL: "pkg:golang/stdlib@1.20.1", Layer: appLayer, Locations: []string{"usr/local/bin/app"}}
	pyyaml := inventory.Package{Ecosystem: inventory.PyPI, Name: "pyyaml", Version: "5.3",
		PURL: "pkg:pypi/pyyaml@5.3", Layer: appLayer, Locations: []string{"usr/lib/python3.6/site-packages/PyYAML-5.3.dist-info/METADATA"}}
	// no purl: an extractor that knows none
	unnamed := inventory.Package{Ecosystem: inventory.NPM, Name: "left-pad", Version: "1.3.0", Layer: appLayer,
		Locations: []string{"app/node_modules/left-pad/package.json"}}

	feed := severity.Rating{Level: severity.Critical, Score: 9.8, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		Source: severity.SourceCVEFeed, Detail: "NVD CVE-2019-14697"}
	muslRefs := []osv.Reference{{Type: "ADVISORY", URL: "https://security.alpinelinux.org/vuln/CVE-2019-14697"},
		{Type: "WEB", URL: "https://www.openwall.com/lists/musl/2019/08/06/1"}}
	fs := []Finding{
		FromMatch(match.Finding{AdvisoryID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"},
			Summary: "musl libc through 1.1.23 has an x87 floating-point stack adjustment imbalance", Severity: feed,
			Package: musl, Fixed: []string{"1.1.20-r5"}, Status: match.StatusFixed, References: muslRefs}),
		FromMatch(match.Finding{AdvisoryID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"},
			Summary: "musl libc through 1.1.23 has an x87 floating-point stack adjustment imbalance", Severity: feed,
			Package: muslUtils, Fixed: []string{"1.1.20-r5"}, Status: match.StatusFixed, References: muslRefs}),
		FromMatch(match.Finding{AdvisoryID: "GO-2022-1144", Aliases: []string{"CVE-2022-41717", "GHSA-xrjj-mj9h-534m"},
			Summary: "Excessive memory growth in net/http and golang.org/x/net/http2", Severity: severity.UnknownRating(),
			Package: xnet, Fixed: []string{"0.4.0"}, Status: match.StatusFixed,
			References: []osv.Reference{{Type: "REPORT", URL: "https://go.dev/issue/56350"}}}),
		FromMatch(match.Finding{AdvisoryID: "GO-2023-1621", Aliases: []string{"CVE-2023-24532"},
			Summary: "Incorrect calculation on P256 curves in crypto/internal/nistec", Severity: severity.Rating{Level: severity.Medium,
				Score: 5.3, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", Source: severity.SourceCVSSv3, Detail: "severity CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"},
			Package: stdlib, Fixed: []string{"1.20.2"}, Status: match.StatusFixed}),
		FromMatch(match.Finding{AdvisoryID: "PYSEC-2020-176", Aliases: []string{"CVE-2020-14343"},
			Summary: "Arbitrary code execution through full_load", Severity: severity.Rating{Level: severity.High, Score: 7.5,
				Vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P", Source: severity.SourceCVSSv2},
			Package: pyyaml, Status: match.StatusNoFix}),
	}
	SortFindings(fs)
	return &Report{
		Digest:         "sha256:4c1d8a0e2b7f6a5d3c9e8b1a0f2d4c6e8a0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f",
		MediaType:      "application/vnd.oci.image.manifest.v1+json",
		Platform:       "linux/amd64",
		Status:         StatusDone,
		VulnDBRevision: 42,
		ScannedAt:      time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC),
		MatchedAt:      time.Date(2026, 9, 1, 12, 0, 1, 0, time.UTC),
		Distro:         &inventory.Distro{ID: "alpine", VersionID: "3.9.6", PrettyName: "Alpine Linux v3.9"},
		Packages:       8,
		Counts:         CountFindings(fs),
		Findings:       fs,
		Inventory: &inventory.Inventory{
			Distro:   &inventory.Distro{ID: "alpine", VersionID: "3.9.6", PrettyName: "Alpine Linux v3.9"},
			Packages: []inventory.Package{pyyaml, musl, busybox, xnet, muslUtils, stdlib, unnamed, busybox},
		},
	}
}

// fixtureOptions names the fixture's subject and tool.
func fixtureOptions() Options {
	return Options{Subject: "registry.example.com/shop/app:1.4", ToolName: "customs", ToolVersion: "v0.9.0"}
}
