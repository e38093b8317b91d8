package ecosystem

import (
	"fmt"
	"regexp"
	"strings"
)

// Go pseudo-packages of the Go vulnerability database: vulnerabilities of
// the standard library, and of the go command and toolchain.
const (
	GoStdlib    = "stdlib"
	GoToolchain = "toolchain"
)

// goTag matches a Go release tag without its "go" prefix: major.minor, an
// optional .patch, and an optional beta/rc pre-release ("1.21rc1",
// "1.9.2rc2", "1.19beta1"). It is the pattern govulncheck (and pkgsite)
// use to turn tags into semantic versions.
var goTag = regexp.MustCompile(`^((?:0|[1-9]\d*)\.(?:0|[1-9]\d*))(\.(?:0|[1-9]\d*))?(?:(beta|rc)([1-9]\d*))?$`)

// GoVersion turns a Go toolchain version, as a binary's build information or
// `go version` reports it, into the semantic version the Go vulnerability
// database uses for the stdlib and toolchain packages, following
// govulncheck: "go1.21.3" -> "1.21.3", "go1.21" -> "1.21.0", "go1.21rc1" ->
// "1.21.0-rc.1", "go1" -> "1.0.0"; anything after a space ("go1.20.1
// X:boringcrypto") is dropped, and the "go" prefix is optional. A version
// that is already semantic ("1.21.0-rc.1", "v1.21.3") is returned without
// its "v". Development builds ("devel +abc") and other strings are errors.
func GoVersion(s string) (string, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return "", fmt.Errorf("Go: empty toolchain version")
	}
	tag := strings.TrimPrefix(fields[0], "go")
	if tag == "1" {
		return "1.0.0", nil
	}
	if m := goTag.FindStringSubmatch(tag); m != nil {
		v := m[1]
		if m[2] != "" {
			v += m[2]
		} else {
			v += ".0"
		}
		if m[3] != "" {
			v += "-" + m[3] + "." + m[4]
		}
		return v, nil
	}
	if sv := strings.TrimPrefix(tag, "v"); semverSyntax.MatchString(sv) {
		return sv, nil
	}
	return "", fmt.Errorf("Go: %q is not a Go toolchain version", s)
}

// goInstalled normalizes the version of an installed Go package: a Go
// release tag for the stdlib and toolchain pseudo-packages, a module
// version without its "v" otherwise.
func goInstalled(name, version string) (string, error) {
	if name == GoStdlib || name == GoToolchain {
		return GoVersion(version)
	}
	return strings.TrimPrefix(version, "v"), nil
}
