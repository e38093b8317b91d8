package report

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// spdxNamespaceBase prefixes the documentNamespace of customs' SPDX
// documents; the subject and a content-derived UUID follow it.
const spdxNamespaceBase = "https://github.com/customs-dev/customs/spdx/"

const noAssertion = "NOASSERTION"

// EncodeSPDX writes r's inventory as an SPDX 2.3 JSON document (with
// github.com/spdx/tools-golang, the SPDX project's Go library): the
// subject as a package of purpose CONTAINER (its version the manifest
// digest) that the document DESCRIBES, the OS release as a package of
// purpose OPERATING_SYSTEM, and every package with its purl as a
// PACKAGE-MANAGER external reference and where it was found as source
// info, each CONTAINED by the subject. Licences are not inventoried, so
// their fields say NOASSERTION. Findings are not part of an SPDX
// document (use CycloneDX or SARIF for them).
//
// The namespace is derived from the content (see Options.Created), so the
// same report gives the same bytes.
func EncodeSPDX(w io.Writer, r *Report, opts Options) error {
	opts = opts.withDefaults(r)
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      opts.Subject,
		DocumentNamespace: spdxNamespaceBase + url.PathEscape(opts.Subject) + "-" + documentUUID(r, opts, FormatSPDX).String(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: opts.ToolName + "-" + opts.ToolVersion}},
			Created:  opts.Created.Format(time.RFC3339),
		},
	}
	const subjectID = common.ElementID("Image")
	subject := &spdx.Package{
		PackageName:             opts.Subject,
		PackageSPDXIdentifier:   subjectID,
		PackageVersion:          r.Digest,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
	}
	if r.Platform != "" {
		subject.PackageComment = "platform " + r.Platform
	}
	doc.Packages = append(doc.Packages, subject)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA:         common.MakeDocElementID("", "DOCUMENT"),
		RefB:         common.MakeDocElementID("", string(subjectID)),
		Relationship: common.TypeRelationshipDescribe,
	})
	contains := func(id common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA:         common.MakeDocElementID("", string(subjectID)),
			RefB:         common.MakeDocElementID("", string(id)),
			Relationship: common.TypeRelationshipContains,
		})
	}
	if d := r.Distro; d != nil && d.ID != "" {
		const osID = common.ElementID("OperatingSystem")
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName:             d.ID,
			PackageSPDXIdentifier:   osID,
			PackageVersion:          d.VersionID,
			PackageDescription:      d.PrettyName,
			PackageDownloadLocation: noAssertion,
			PrimaryPackagePurpose:   "OPERATING_SYSTEM",
		})
		contains(osID)
	}
	pkgs, _ := sbomPackages(r)
	for _, p := range pkgs {
		id := common.ElementID("Package-" + p.id)
		sp := &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: noAssertion,
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  noAssertion,
			PackageCopyrightText:    noAssertion,
			PackageSourceInfo:       spdxSourceInfo(p),
		}
		if p.PURL != "" {
			sp.PackageExternalReferences = []*spdx.PackageExternalReference{{
				Category: common.CategoryPackageManager,
				RefType:  common.TypePackageManagerPURL,
				Locator:  p.PURL,
			}}
		}
		doc.Packages = append(doc.Packages, sp)
		contains(id)
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return fmt.Errorf("encoding SPDX: %w", err)
	}
	return nil
}

// spdxSourceInfo says where a package was found: its ecosystem, the
// source package it was built from, the paths, and the layer.
func spdxSourceInfo(p sbomPackage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s package", p.Ecosystem)
	if p.SourceName != "" {
		fmt.Fprintf(&b, " built from source package %s", p.SourceName)
		if p.SourceVersion != "" {
			fmt.Fprintf(&b, " %s", p.SourceVersion)
		}
	}
	if len(p.Locations) > 0 {
		fmt.Fprintf(&b, ", found at %s", strings.Join(p.Locations, ", "))
	}
	if p.Layer != "" {
		fmt.Fprintf(&b, " in layer %s", p.Layer)
	}
	return b.String()
}
