#!/bin/sh
# Runs the session-check and bearer-token benchmarks of internal/auth in
# alternating rounds, under the machine-wide benchmark lock, printing the
# load average before and after. Usage: bench/auth/run.sh [ROUNDS] > out.txt
set -eu
rounds=${1:-5}
cd "$(dirname "$0")/../.."
go test -c -o /tmp/customs-authbench.test ./internal/auth
cd internal/auth
flock /tmp/bench.lock sh -c '
uptime
i=0
while [ $i -lt '"$rounds"' ]; do
	i=$((i+1))
	echo "# round $i"
	for b in "SQLiteSessionRead" "SQLiteSessionAPI/user_only" "SQLiteSessionAPI/revocable$" "SQLiteSessionAPI/revocable,_10000" "AuthenticateSession" "AuthenticateAuthorizeBearer/^cached$" "SQLiteBearerMember"; do
		/tmp/customs-authbench.test -test.run XXX -test.bench "$b" -test.benchtime=1s -test.benchmem | grep "^Benchmark"
	done
done
uptime
'
