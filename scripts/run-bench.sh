#!/usr/bin/env bash
# Runs a benchmark in the test VM, then prints its report.
# Usage: run-bench.sh KERNEL_TREE GRID [RUNS]
#   GRID "overhead" is the hook-overhead benchmark (scripts/overhead-guest.sh, RUNS
#   repetitions); any other is a goodput grid (scripts/bench-guest.sh).
#   Results: .build/bench/GRID.csv (one line per measurement) and .build/bench/GRID.md.
set -uo pipefail
tree=${1:?usage: run-bench.sh KERNEL_TREE GRID [RUNS]}
grid=${2:?usage: run-bench.sh KERNEL_TREE GRID [RUNS]}
runs=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/.build/bench
mkdir -p "$out"
rm -f "$out/$grid.csv"
if [ "$grid" = overhead ]; then
	gcc -O2 -Wall -static -o "$out/udp_flood" "$here/selftests/udp_flood.c" || exit 1
	guest="scripts/overhead-guest.sh '$out/udp_flood' '$out/$grid.csv' $runs"
else
	guest="scripts/bench-guest.sh '$grid' '$out/$grid.csv' $runs"
fi
VM_TIMEOUT=${VM_TIMEOUT:-7200} "$here/scripts/vm-exec.sh" "$tree" "$out/vm" \
	"cd '$here' && MPUDP_DIR='$here' $guest"
rc=$?
tail -n 5 "$out/vm/console.log" 2>/dev/null
[ -s "$out/$grid.csv" ] || exit 1
python3 "$here/scripts/bench-report.py" "$out/$grid.csv" | tee "$out/$grid.md"
exit "$rc"
