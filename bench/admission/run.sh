#!/usr/bin/env bash
# Benchmarks customs' admission webhook against OPA's server answering the
# same ImageReviews (seed 002's image enforcer in Rego), side by side.
# Installs opa into ~/.cache/customs-test/bin if missing (the version in
# go.mod), builds customs and the benchmark, and runs it; arguments go to the
# benchmark, e.g.
#   bench/admission/run.sh -duration 2s
#   bench/admission/run.sh -out bench/admission/results.md
set -euo pipefail
cd "$(dirname "$0")/../.."

opa_version=$(go list -m -f '{{.Version}}' github.com/open-policy-agent/opa)
bin="${CUSTOMS_TEST_CACHE:-$HOME/.cache/customs-test}/bin"
mkdir -p "$bin"
# (The version is read into a variable first: grep -q closing the pipe
# early would fail the pipeline under pipefail and reinstall every run.)
have=$("$bin/opa" version 2>/dev/null || true)
if ! grep -qF "${opa_version#v}" <<<"$have"; then
	echo "installing opa $opa_version into $bin" >&2
	GOBIN="$bin" GOFLAGS= go install "github.com/open-policy-agent/opa@$opa_version"
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
go build -o "$build/customs" ./cmd/customs
go build -o "$build/bench-admission" ./bench/admission
"$build/bench-admission" -customs "$build/customs" -opa "$bin/opa" "$@"
