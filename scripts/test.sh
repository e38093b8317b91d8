#!/usr/bin/env bash
# Runs every test of the repository, installing what the tests need first
# (scripts/test-deps.sh). This is `make test` and what CI runs (.ci/run).
#
# End-to-end tests run the real `customs serve` and real clients (skopeo,
# crane, oras, regctl, the OCI conformance suite); CUSTOMS_E2E=1 makes a
# missing tool a failure instead of a skip. The Kubernetes tests (test/kube)
# run a real etcd and kube-apiserver and kubectl (scripts/kube-deps.sh);
# CUSTOMS_TEST_REQUIRE_KUBE=1 makes their absence a failure too. Extra arguments go to `go test`
# (e.g. scripts/test.sh -run TestSkopeo ./test/e2e/), replacing ./... .
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${CUSTOMS_TEST_CACHE:-$HOME/.cache/customs-test}"

scripts/test-deps.sh

export PATH="$CACHE/bin:$PATH"
export CUSTOMS_TEST_POSTGRES_DSN="${CUSTOMS_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export CUSTOMS_E2E=1
export CUSTOMS_TEST_REQUIRE_KUBE=1
export CUSTOMS_TEST_IMAGES="$CACHE/images"
# The registry package runs the conformance suite against its handler too.
export CUSTOMS_CONFORMANCE_BIN="$CACHE/bin/conformance"

echo "test: go build ./cmd/customs" >&2
go build -o bin/customs ./cmd/customs

args=("$@")
if [ "${#args[@]}" -eq 0 ]; then
	args=(./...)
fi
# Two packages at a time: the machines have two cores, and the end-to-end
# package runs its servers and clients in parallel on its own.
echo "test: go test -count=1 -p 2 -timeout 30m ${args[*]}" >&2
exec go test -count=1 -p 2 -timeout 30m "${args[@]}"
