#!/usr/bin/env bash
# What the audit trail costs pulls over real HTTP: builds customs and the
# benchmark and runs it; arguments go to the benchmark, e.g.
#   flock /tmp/bench.lock bench/audit/run.sh -rate 5000
#   flock /tmp/bench.lock bench/audit/run.sh -store postgres -postgres 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
go build -o "$build/customs" ./cmd/customs
go build -o "$build/bench-audit" ./bench/audit
"$build/bench-audit" -customs "$build/customs" "$@"
