package ecosystem

import (
	"regexp"
	"strings"

	"github.com/customs-dev/customs/internal/inventory"
)

// Ecosystem is an OSV ecosystem string split into its base ecosystem and
// its release suffix ("Alpine:v3.9" -> Base "Alpine", Release "v3.9";
// "Red Hat:enterprise_linux:9::appstream" -> "Red Hat",
// "enterprise_linux:9::appstream"). Release is empty for ecosystems that
// are not release-scoped ("PyPI", "Go", or a bare "Debian").
type Ecosystem struct {
	Base    string
	Release string
}

// Split splits an OSV ecosystem string at its first colon.
func Split(s string) Ecosystem {
	base, release, _ := strings.Cut(s, ":")
	return Ecosystem{Base: base, Release: release}
}

// String joins e back into the OSV form.
func (e Ecosystem) String() string {
	if e.Release == "" {
		return e.Base
	}
	return e.Base + ":" + e.Release
}

// Scoped reports whether e names one release of a distribution.
func (e Ecosystem) Scoped() bool { return e.Release != "" }

var (
	majorMinor   = regexp.MustCompile(`^v?(\d+)\.(\d+)`)
	leadingMajor = regexp.MustCompile(`^(\d+)`)
	ubuntuNumber = regexp.MustCompile(`^\d+\.\d+$`)
	// suseRelease matches the SUSE Linux Enterprise Server product and its
	// modules (whose packages a SLES image installs), with the LTSS
	// extension, e.g. "Linux Enterprise Server 15 SP5",
	// "Linux Enterprise Module for Basesystem 15 SP5",
	// "Linux Enterprise Server 12 SP5-LTSS".
	suseRelease = regexp.MustCompile(`^Linux Enterprise (?:Server|Module for [A-Za-z0-9 &-]+?) (\d+)(?: SP(\d+))?(?:-LTSS)?$`)
	// openSUSERelease matches "Leap 15.5", "Leap 15.5 NonFree",
	// "Leap Micro 5.5" and "Tumbleweed".
	openSUSERelease = regexp.MustCompile(`^(Leap(?: Micro)? \d+\.\d+|Tumbleweed)(?: NonFree)?$`)
)

// ReleaseKey returns the canonical key of a release-scoped ecosystem's
// release, the key DistroRelease gives the images it applies to:
//
//	Alpine:v3.9                          -> "3.9"
//	Debian:12                            -> "12"
//	Ubuntu:22.04:LTS, Ubuntu:Pro:18.04:LTS -> "22.04", "18.04" (Pro and LTS
//	                                       are variants of the release, as osv.dev treats them)
//	Red Hat:enterprise_linux:9::appstream -> "9" (any repository of RHEL 9)
//	Rocky Linux:9, AlmaLinux:9           -> "9"
//	SUSE:Linux Enterprise Server 15 SP5  -> "15 SP5" (also its modules and LTSS)
//	openSUSE:Leap 15.5                   -> "Leap 15.5"
//
// ok is false for a release no image distribution maps to: other Red Hat
// products (openshift, rhel_eus, ...), Ubuntu FIPS or hardware variants,
// SUSE products other than SLES and its modules, and unknown bases. A record
// scoped to such a release never matches.
func ReleaseKey(e Ecosystem) (key string, ok bool) {
	r := e.Release
	switch e.Base {
	case inventory.Alpine:
		if m := majorMinor.FindStringSubmatch(r); m != nil && strings.HasPrefix(r, "v") {
			return m[1] + "." + m[2], true
		}
	case inventory.Debian:
		if leadingMajor.MatchString(r) && !strings.ContainsAny(r, ".:") {
			return r, true
		}
	case inventory.Ubuntu:
		var rest []string
		for _, p := range strings.Split(r, ":") {
			if p != "Pro" && p != "LTS" {
				rest = append(rest, p)
			}
		}
		if len(rest) == 1 && ubuntuNumber.MatchString(rest[0]) {
			return rest[0], true
		}
	case inventory.RedHat:
		parts := strings.Split(r, ":")
		if len(parts) >= 2 && parts[0] == "enterprise_linux" && leadingMajor.MatchString(parts[1]) {
			return leadingMajor.FindString(parts[1]), true
		}
	case inventory.Rocky, inventory.Alma:
		if m := leadingMajor.FindString(r); m != "" && (m == r || strings.HasPrefix(r, m+".")) {
			return m, true
		}
	case inventory.SUSE:
		if m := suseRelease.FindStringSubmatch(r); m != nil {
			return suseKey(m[1], m[2]), true
		}
	case inventory.OpenSUSE:
		if m := openSUSERelease.FindStringSubmatch(r); m != nil {
			return m[1], true
		}
	}
	return "", false
}

func suseKey(major, sp string) string {
	if sp == "" || sp == "0" {
		return major
	}
	return major + " SP" + sp
}

// DistroBase maps an os-release ID to the OSV base ecosystem of the
// distribution's packages ("alpine" -> "Alpine", "rhel" -> "Red Hat",
// "sles" -> "SUSE", "opensuse-leap" -> "openSUSE"). ok is false for a
// distribution without an OSV ecosystem.
func DistroBase(id string) (base string, ok bool) {
	switch strings.ToLower(id) {
	case "alpine":
		return inventory.Alpine, true
	case "debian":
		return inventory.Debian, true
	case "ubuntu":
		return inventory.Ubuntu, true
	case "rhel":
		return inventory.RedHat, true
	case "rocky":
		return inventory.Rocky, true
	case "almalinux":
		return inventory.Alma, true
	case "sles", "sled", "sles_sap":
		return inventory.SUSE, true
	case "opensuse-leap", "opensuse-tumbleweed", "opensuse-leap-micro", "opensuse":
		return inventory.OpenSUSE, true
	}
	return "", false
}

// DistroRelease returns the base ecosystem of an image's distribution and
// the release key (see ReleaseKey) its packages' advisories are scoped
// to: alpine 3.9.6 -> Alpine "3.9"; debian 12 -> Debian "12"; ubuntu 22.04
// -> Ubuntu "22.04"; rhel 9.3, rocky 9.2, almalinux 9.3 -> "9"; sles 15.5 ->
// SUSE "15 SP5"; opensuse-leap 15.5 -> openSUSE "Leap 15.5";
// opensuse-tumbleweed -> "Tumbleweed". ok is false when d is nil, its ID
// has no OSV ecosystem, or its VERSION_ID does not name a release.
func DistroRelease(d *inventory.Distro) (base, key string, ok bool) {
	if d == nil {
		return "", "", false
	}
	base, ok = DistroBase(d.ID)
	if !ok {
		return "", "", false
	}
	v := strings.TrimSpace(d.VersionID)
	switch base {
	case inventory.Alpine:
		if m := majorMinor.FindStringSubmatch(v); m != nil {
			return base, m[1] + "." + m[2], true
		}
	case inventory.Debian, inventory.RedHat, inventory.Rocky, inventory.Alma:
		if m := leadingMajor.FindString(v); m != "" {
			return base, m, true
		}
	case inventory.Ubuntu:
		if m := majorMinor.FindStringSubmatch(v); m != nil {
			return base, m[1] + "." + m[2], true
		}
	case inventory.SUSE:
		major, sp, _ := strings.Cut(v, ".")
		if leadingMajor.MatchString(major) && (sp == "" || leadingMajor.MatchString(sp)) {
			return base, suseKey(major, sp), true
		}
	case inventory.OpenSUSE:
		switch strings.ToLower(d.ID) {
		case "opensuse-tumbleweed":
			return base, "Tumbleweed", true
		case "opensuse-leap-micro":
			if m := majorMinor.FindStringSubmatch(v); m != nil {
				return base, "Leap Micro " + m[1] + "." + m[2], true
			}
		default:
			if m := majorMinor.FindStringSubmatch(v); m != nil {
				return base, "Leap " + m[1] + "." + m[2], true
			}
		}
	}
	return "", "", false
}

// Applies reports whether an advisory's affected entry for the OSV
// ecosystem eco applies to a package of base ecosystem pkgBase on the
// distribution d. An ecosystem without a release applies to every package of
// its base; a release-scoped one only to packages of that base on an image
// whose distribution release has the same key (so an Alpine:v3.9 record
// does not apply to Alpine 3.18).
func Applies(eco string, pkgBase string, d *inventory.Distro) bool {
	e := Split(eco)
	if e.Base != pkgBase {
		return false
	}
	if !e.Scoped() {
		return true
	}
	key, ok := ReleaseKey(e)
	if !ok {
		return false
	}
	base, dkey, ok := DistroRelease(d)
	return ok && base == e.Base && dkey == key
}
