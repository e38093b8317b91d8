#!/usr/bin/env bash
# Benchmarks customs against the CNCF distribution registry, side by side.
# Installs distribution into ~/.cache/customs-test/bin if missing, builds
# customs and the benchmark, and runs it; arguments go to the benchmark, e.g.
#   bench/registry/run.sh -quick
#   bench/registry/run.sh -out bench/registry/results.md
set -euo pipefail
cd "$(dirname "$0")/../.."

dist_version=v3.1.2
bin="${CUSTOMS_TEST_CACHE:-$HOME/.cache/customs-test}/bin"
mkdir -p "$bin"
if ! "$bin/registry" --version 2>/dev/null | grep -qF "$dist_version"; then
	echo "installing distribution registry $dist_version into $bin" >&2
	GOBIN="$bin" go install "github.com/distribution/distribution/v3/cmd/registry@$dist_version"
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
go build -o "$build/customs" ./cmd/customs
go build -o "$build/bench-registry" ./bench/registry

# The toolchain may be told not to stamp VCS data (GOFLAGS=-buildvcs=false).
source="git $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- cmd internal go.mod go.sum 2>/dev/null || source="$source + uncommitted changes in cmd/, internal/"

BENCH_COMMAND="bench/registry/run.sh $*" BENCH_SOURCE="$source" \
	"$build/bench-registry" -customs "$build/customs" -registry "$bin/registry" "$@"
