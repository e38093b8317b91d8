#!/usr/bin/env bash
# Benchmarks `customs scan` against syft, side by side, on the Debian
# bookworm image of the test cache and on a mixed-language image built from
# it (Go binaries, Python, npm, Java, Ruby). Installs the pinned syft into
# ~/.cache/customs-test/bin if missing, builds customs and the benchmark,
# and runs it; arguments go to the benchmark, e.g.
#   bench/scan/run.sh -rounds 1
#   bench/scan/run.sh -out bench/scan/results.md
# The Debian image is built by scripts/test-deps.sh (run it first).
set -euo pipefail
cd "$(dirname "$0")/../.."

syft_version=v1.57.0 # the version scripts/test-deps.sh pins
cache="${CUSTOMS_TEST_CACHE:-$HOME/.cache/customs-test}"
bin="$cache/bin"
debian="$cache/images/debian-bookworm"
if [ ! -f "$debian/index.json" ]; then
	echo "bench/scan: $debian is missing: run scripts/test-deps.sh first" >&2
	exit 1
fi
if [ "$(cat "$bin/.syft.version" 2>/dev/null)" != "github.com/anchore/syft/cmd/syft@$syft_version" ]; then
	echo "bench/scan: installing syft $syft_version into $bin" >&2
	mkdir -p "$bin"
	(cd / && GOBIN="$bin" GOFLAGS=-buildvcs=false go install "github.com/anchore/syft/cmd/syft@$syft_version")
	echo "github.com/anchore/syft/cmd/syft@$syft_version" >"$bin/.syft.version"
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
go build -o "$build/customs" ./cmd/customs
go build -o "$build/bench-scan" ./bench/scan

# Real Go binaries with many modules for the mixed image: the test tools.
gobins=""
for t in crane regctl; do
	if [ -x "$bin/$t" ]; then gobins="${gobins:+$gobins,}$bin/$t"; fi
done

"$build/bench-scan" -customs "$build/customs" -syft "$bin/syft" -debian "$debian" -repo . -gobin "$gobins" -syft-version "$syft_version" "$@"
