#!/bin/sh
# disk.sh: compare customs' blob store write throughput with what the disk
# sustains for a sequential, fsync'd write of the same size.
#
# Usage: bench/disk/disk.sh [DIR] [ROUNDS]
#   DIR     a directory on the filesystem that holds (or will hold) the data
#           dir; default /work
#   ROUNDS  measurements of each kind, interleaved; the median is reported
#           (default 5)
#
# Per round: dd buffered + fdatasync (the baseline), dd with O_DIRECT, then
# BenchmarkAppend/1GiB (NewUpload + Append + Commit, i.e. a monolithic push),
# BenchmarkAppendNoWriteback/1GiB (the same with sync_file_range off, to see
# what overlapping buys) and BenchmarkPut/1GiB of internal/blob/fs, with
# CUSTOMS_BENCH_DIR=DIR. The machine should be otherwise idle: on a shared
# disk single rounds vary by 2x or more, hence the interleaving and medians.
# All MB/s are 10^6 bytes per second. Temp files are removed on exit.
set -eu
export LC_ALL=C

DIR=${1:-/work}
ROUNDS=${2:-5}
MIB=1024 # the customs benchmarks write 1 GiB
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "$DIR/customs-disk-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "building internal/blob/fs benchmarks..." >&2
(cd "$REPO" && go test -c -o "$WORK/blobfs.test" ./internal/blob/fs)

# dd_mbps ARGS...: run dd writing MIB MiB to $WORK/dd, print MB/s.
dd_mbps() {
	sync
	dd if=/dev/zero of="$WORK/dd" bs=4M count=$((MIB / 4)) "$@" 2>&1 |
		awk '/copied/ { for (i = 1; i <= NF; i++) if ($(i+1) == "s,") printf "%.1f\n", $1 / $i / 1e6 }'
	rm -f "$WORK/dd"
}

# bench_mbps NAME: run one customs benchmark once, print MB/s.
bench_mbps() {
	sync
	(cd "$WORK" && CUSTOMS_BENCH_DIR="$WORK" ./blobfs.test -test.run '^$' \
		-test.bench "^$1\$" -test.benchtime 1x) |
		awk '/MB\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") print $i }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$WORK/sync" >"$WORK/direct" >"$WORK/append" >"$WORK/nowb" >"$WORK/put"

# measure K: run measurement K (0-4), append its MB/s to its file, print it.
measure() {
	case $1 in
	0) v=$(dd_mbps conv=fdatasync) f=sync ;;
	1) v=$(dd_mbps oflag=direct) f=direct ;;
	2) v=$(bench_mbps 'BenchmarkAppend$/^1GiB') f=append ;;
	3) v=$(bench_mbps 'BenchmarkAppendNoWriteback$/^1GiB') f=nowb ;;
	4) v=$(bench_mbps 'BenchmarkPut$/^1GiB') f=put ;;
	esac
	echo "$v" >>"$WORK/$f"
	printf ' %s %s' "$f" "$v" >&2
}

i=1
while [ "$i" -le "$ROUNDS" ]; do
	printf 'round %d (MB/s):' "$i" >&2
	# Rotate the order each round so that no kind always follows another.
	for k in 0 1 2 3 4; do measure $(((k + i) % 5)); done
	echo >&2
	i=$((i + 1))
done

S=$(median <"$WORK/sync"); D=$(median <"$WORK/direct")
A=$(median <"$WORK/append"); N=$(median <"$WORK/nowb"); P=$(median <"$WORK/put")
echo "filesystem: $(df -T "$DIR" | awk 'NR == 2 { print $1, $2 }'), $MIB MiB, median of $ROUNDS rounds, load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8s MB/s\n' "dd bs=4M conv=fdatasync (baseline)" "$S" "dd bs=4M oflag=direct" "$D" \
	"customs Append+Commit" "$A" "  same, no early writeback" "$N" "customs Put" "$P"
awk -v a="$A" -v p="$P" -v s="$S" 'BEGIN { printf "ratio to baseline: append+commit %.2f, put %.2f\n", a / s, p / s }'
