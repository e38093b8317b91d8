package ecosystem

import (
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in            string
		base, release string
	}{
		{"Alpine:v3.9", "Alpine", "v3.9"},
		{"Debian:12", "Debian", "12"},
		{"Ubuntu:22.04:LTS", "Ubuntu", "22.04:LTS"},
		{"Ubuntu:Pro:18.04:LTS", "Ubuntu", "Pro:18.04:LTS"},
		{"Red Hat:enterprise_linux:9::appstream", "Red Hat", "enterprise_linux:9::appstream"},
		{"Rocky Linux:9", "Rocky Linux", "9"},
		{"AlmaLinux:9", "AlmaLinux", "9"},
		{"SUSE:Linux Enterprise Server 15 SP5", "SUSE", "Linux Enterprise Server 15 SP5"},
		{"openSUSE:Leap 15.5", "openSUSE", "Leap 15.5"},
		{"PyPI", "PyPI", ""},
		{"Go", "Go", ""},
	}
	for _, tc := range tests {
		e := Split(tc.in)
		if e.Base != tc.base || e.Release != tc.release {
			t.Errorf("Split(%q) = %+v, want %q, %q", tc.in, e, tc.base, tc.release)
		}
		if e.String() != tc.in {
			t.Errorf("Split(%q).String() = %q", tc.in, e.String())
		}
		if e.Scoped() != (tc.release != "") {
			t.Errorf("Split(%q).Scoped() = %v", tc.in, e.Scoped())
		}
	}
}

func TestReleaseKey(t *testing.T) {
	tests := []struct {
		eco  string
		key  string
		none bool
	}{
		{eco: "Alpine:v3.9", key: "3.9"},
		{eco: "Alpine:v3.18", key: "3.18"},
		{eco: "Debian:12", key: "12"},
		{eco: "Debian:11", key: "11"},
		{eco: "Ubuntu:22.04:LTS", key: "22.04"},
		{eco: "Ubuntu:Pro:18.04:LTS", key: "18.04"},
		{eco: "Ubuntu:23.10", key: "23.10"},
		{eco: "Red Hat:enterprise_linux:9::appstream", key: "9"},
		{eco: "Red Hat:enterprise_linux:8::baseos", key: "8"},
		{eco: "Rocky Linux:9", key: "9"},
		{eco: "AlmaLinux:9", key: "9"},
		{eco: "AlmaLinux:8", key: "8"},
		{eco: "SUSE:Linux Enterprise Server 15 SP5", key: "15 SP5"},
		{eco: "SUSE:Linux Enterprise Module for Basesystem 15 SP5", key: "15 SP5"},
		{eco: "SUSE:Linux Enterprise Server 12 SP5-LTSS", key: "12 SP5"},
		{eco: "SUSE:Linux Enterprise Server 15", key: "15"},
		{eco: "openSUSE:Leap 15.5", key: "Leap 15.5"},
		{eco: "openSUSE:Leap 15.5 NonFree", key: "Leap 15.5"},
		{eco: "openSUSE:Tumbleweed", key: "Tumbleweed"},
		{eco: "openSUSE:Leap Micro 5.5", key: "Leap Micro 5.5"},
		// Releases no image distribution maps to.
		{eco: "Ubuntu:Pro:FIPS-updates:18.04:LTS", none: true},
		{eco: "Ubuntu:22.04:LTS:for:NVIDIA:BlueField", none: true},
		{eco: "Red Hat:openshift:4.14::el9", none: true},
		{eco: "Red Hat:rhel_eus:9.2::baseos", none: true},
		{eco: "SUSE:Linux Enterprise Micro 5.5", none: true},
		{eco: "SUSE:Linux Enterprise Server for SAP Applications 15 SP5", none: true},
		{eco: "Alpine:edge", none: true},
		{eco: "Debian:sid", none: true},
		{eco: "PyPI:x", none: true},
	}
	for _, tc := range tests {
		key, ok := ReleaseKey(Split(tc.eco))
		if tc.none {
			if ok {
				t.Errorf("ReleaseKey(%q) = %q, want none", tc.eco, key)
			}
			continue
		}
		if !ok || key != tc.key {
			t.Errorf("ReleaseKey(%q) = %q, %v; want %q", tc.eco, key, ok, tc.key)
		}
	}
}

func TestDistroRelease(t *testing.T) {
	tests := []struct {
		id, version string
		base, key   string
		none        bool
	}{
		{id: "alpine", version: "3.9.6", base: inventory.Alpine, key: "3.9"},
		{id: "alpine", version: "3.18.4", base: inventory.Alpine, key: "3.18"},
		{id: "debian", version: "12", base: inventory.Debian, key: "12"},
		{id: "ubuntu", version: "22.04", base: inventory.Ubuntu, key: "22.04"},
		{id: "rhel", version: "9.3", base: inventory.RedHat, key: "9"},
		{id: "rocky", version: "9.2", base: inventory.Rocky, key: "9"},
		{id: "almalinux", version: "9.3", base: inventory.Alma, key: "9"},
		{id: "sles", version: "15.5", base: inventory.SUSE, key: "15 SP5"},
		{id: "sles", version: "15", base: inventory.SUSE, key: "15"},
		{id: "opensuse-leap", version: "15.5", base: inventory.OpenSUSE, key: "Leap 15.5"},
		{id: "opensuse-tumbleweed", version: "20240101", base: inventory.OpenSUSE, key: "Tumbleweed"},
		{id: "opensuse-leap-micro", version: "5.5", base: inventory.OpenSUSE, key: "Leap Micro 5.5"},
		{id: "debian", version: "", none: true}, // sid / testing have no VERSION_ID
		{id: "centos", version: "7", none: true},
		{id: "", version: "", none: true},
	}
	for _, tc := range tests {
		d := &inventory.Distro{ID: tc.id, VersionID: tc.version}
		base, key, ok := DistroRelease(d)
		if tc.none {
			if ok {
				t.Errorf("DistroRelease(%s %s) = %q %q, want none", tc.id, tc.version, base, key)
			}
			continue
		}
		if !ok || base != tc.base || key != tc.key {
			t.Errorf("DistroRelease(%s %s) = %q %q %v; want %q %q", tc.id, tc.version, base, key, ok, tc.base, tc.key)
		}
	}
	if _, _, ok := DistroRelease(nil); ok {
		t.Error("DistroRelease(nil) ok")
	}
}

func TestApplies(t *testing.T) {
	alpine39 := &inventory.Distro{ID: "alpine", VersionID: "3.9.6"}
	alpine318 := &inventory.Distro{ID: "alpine", VersionID: "3.18.4"}
	ubuntu1804 := &inventory.Distro{ID: "ubuntu", VersionID: "18.04"}
	tests := []struct {
		eco, pkgBase string
		d            *inventory.Distro
		want         bool
	}{
		{"Alpine:v3.9", inventory.Alpine, alpine39, true},
		{"Alpine:v3.9", inventory.Alpine, alpine318, false},
		{"Alpine:v3.18", inventory.Alpine, alpine39, false},
		{"Alpine:v3.9", inventory.Alpine, nil, false},
		{"Alpine", inventory.Alpine, alpine318, true},
		{"Alpine:v3.9", inventory.Debian, alpine39, false},
		{"Debian:12", inventory.Debian, &inventory.Distro{ID: "debian", VersionID: "12"}, true},
		{"Debian:12", inventory.Debian, &inventory.Distro{ID: "debian", VersionID: "11"}, false},
		{"Ubuntu:Pro:18.04:LTS", inventory.Ubuntu, ubuntu1804, true},
		{"Ubuntu:18.04:LTS", inventory.Ubuntu, ubuntu1804, true},
		{"Ubuntu:Pro:FIPS:18.04:LTS", inventory.Ubuntu, ubuntu1804, false},
		{"Red Hat:enterprise_linux:9::appstream", inventory.RedHat, &inventory.Distro{ID: "rhel", VersionID: "9.3"}, true},
		{"Red Hat:enterprise_linux:9::appstream", inventory.RedHat, &inventory.Distro{ID: "rhel", VersionID: "8.9"}, false},
		{"Rocky Linux:9", inventory.Rocky, &inventory.Distro{ID: "rocky", VersionID: "9.2"}, true},
		// The same release number of another distribution does not match.
		{"Rocky Linux:9", inventory.Rocky, &inventory.Distro{ID: "almalinux", VersionID: "9.2"}, false},
		{"SUSE:Linux Enterprise Server 15 SP5", inventory.SUSE, &inventory.Distro{ID: "sles", VersionID: "15.5"}, true},
		{"SUSE:Linux Enterprise Server 15 SP5", inventory.SUSE, &inventory.Distro{ID: "sles", VersionID: "15.4"}, false},
		{"openSUSE:Leap 15.5", inventory.OpenSUSE, &inventory.Distro{ID: "opensuse-leap", VersionID: "15.5"}, true},
		{"Go", inventory.Go, nil, true},
	}
	for _, tc := range tests {
		if got := Applies(tc.eco, tc.pkgBase, tc.d); got != tc.want {
			t.Errorf("Applies(%q, %q, %+v) = %v, want %v", tc.eco, tc.pkgBase, tc.d, got, tc.want)
		}
	}
}

func TestParseTooLong(t *testing.T) {
	r, err := For(inventory.NuGet)
	if err != nil {
		t.Fatal(err)
	}
	long := "1" + strings.Repeat("0", MaxVersionLen)
	if _, err := r.Parse(long); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("Parse(%d bytes) error = %v, want a length error", len(long), err)
	}
	if _, err := r.Parse(long[:MaxVersionLen]); err != nil {
		t.Errorf("Parse(%d bytes): %v", MaxVersionLen, err)
	}
}
