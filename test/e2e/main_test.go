// Package e2e_test runs the real `customs serve` against the real clients a
// user would use: the OCI conformance suite, skopeo, crane, oras and regctl.
// `make test` installs them all and sets CUSTOMS_E2E=1; without it a
// missing tool skips the test that needs it.
//
// CUSTOMS_E2E_TARGET=distribution runs the same tests against the CNCF
// registry instead, to tell a client-side problem from a customs one.
package e2e_test

import (
	"os"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
