// Package inventory holds what a scan finds in an image: the operating
// system release and the packages installed, OS and language alike. The
// scanner (package scan) produces inventories, the vulnerability database
// (package vulndb) matches them, and stores keep them so that a changed
// advisory can be matched again without reading a layer.
//
// Ecosystem names are OSV's base ecosystem names without a release suffix
// ("Debian", "Alpine", "Go", "PyPI", "npm", "Maven", "crates.io", ...); the
// release an OS package belongs to comes from the inventory's Distro.
package inventory

// Common OSV ecosystem names used by the scanner and the matcher.
const (
	Alpine    = "Alpine"
	Debian    = "Debian"
	Ubuntu    = "Ubuntu"
	RedHat    = "Red Hat"
	Rocky     = "Rocky Linux"
	Alma      = "AlmaLinux"
	SUSE      = "SUSE"
	OpenSUSE  = "openSUSE"
	Go        = "Go"
	NPM       = "npm"
	PyPI      = "PyPI"
	Maven     = "Maven"
	RubyGems  = "RubyGems"
	CratesIO  = "crates.io"
	NuGet     = "NuGet"
	Packagist = "Packagist"
)

// Distro identifies the operating system release of an image, as read from
// /etc/os-release (or its equivalents).
type Distro struct {
	// ID is os-release's ID ("debian", "ubuntu", "alpine", "rhel",
	// "rocky", "almalinux", "sles", "opensuse-leap", ...).
	ID string `json:"id"`
	// VersionID is os-release's VERSION_ID ("12", "22.04", "3.9.6", "9.3").
	VersionID string `json:"versionID,omitempty"`
	// Codename is VERSION_CODENAME when present ("bookworm").
	Codename string `json:"codename,omitempty"`
	// PrettyName is PRETTY_NAME, for display.
	PrettyName string `json:"prettyName,omitempty"`
}

// Package is one installed package.
type Package struct {
	// Ecosystem is the OSV base ecosystem ("Alpine", "Go", ...).
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// SourceName and SourceVersion name the source package an OS binary
	// package was built from (Debian and Ubuntu advisories are keyed by
	// source package, Alpine's by the apk origin, which goes here). Empty
	// when unknown or the same as Name/Version.
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// PURL is the package URL, when the extractor knows it.
	PURL string `json:"purl,omitempty"`
	// Layer is the diffID of the layer that introduced the package ("" for
	// a scan of a plain directory).
	Layer string `json:"layer,omitempty"`
	// Locations are the paths the package was found at.
	Locations []string `json:"locations,omitempty"`
	// Platform is "GOOS/GOARCH" ("linux/amd64") for packages whose
	// advisories may be platform-specific, currently those of Go binaries
	// (from the binary's build settings); either part is empty when the
	// binary does not record it. Empty when unknown or not applicable:
	// the package is then matched against advisories of every platform.
	Platform string `json:"platform,omitempty"`
}

// Inventory is everything found in one image (one platform of it).
type Inventory struct {
	// Distro is nil when no OS release was found.
	Distro   *Distro   `json:"distro,omitempty"`
	Packages []Package `json:"packages"`
}
