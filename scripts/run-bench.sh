#!/usr/bin/env bash
# Runs a benchmark in the test VM, then prints its report.
# Usage: [BENCH_TUNNELS="T..."] [BENCH_CELLS="CELL;..."] [BENCH_NAME=NAME] [BENCH_TRACE=1] \
#        run-bench.sh KERNEL_TREE GRID [RUNS]
#   GRID "overhead" is the hook-overhead benchmark (scripts/overhead-guest.sh, RUNS
#   repetitions); any other is a goodput grid (scripts/bench-guest.sh), of which
#   BENCH_TUNNELS and BENCH_CELLS replace the tunnels and cells.
#   Results: .build/bench/NAME.csv (one line per measurement) and .build/bench/NAME.md;
#   NAME defaults to GRID.
set -uo pipefail
tree=${1:?usage: run-bench.sh KERNEL_TREE GRID [RUNS]}
grid=${2:?usage: run-bench.sh KERNEL_TREE GRID [RUNS]}
runs=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/.build/bench
name=${BENCH_NAME:-$grid}
csv=$out/$name.csv
mkdir -p "$out"
rm -f "$csv"
if [ "$grid" = overhead ]; then
	gcc -O2 -Wall -static -o "$out/udp_flood" "$here/selftests/udp_flood.c" || exit 1
	guest="scripts/overhead-guest.sh '$out/udp_flood' '$csv' $runs"
else
	guest="BENCH_TUNNELS='${BENCH_TUNNELS:-}' BENCH_CELLS='${BENCH_CELLS:-}' BENCH_TRACE='${BENCH_TRACE:-0}'"
	guest+=" scripts/bench-guest.sh '$grid' '$csv' $runs"
fi
# The guest's output goes to console.log; its progress lines (one per download) are shown
# here as they come, so that a grid of many minutes does not look like a hang.
: >"$out/console.log"
(tail -n +1 -F "$out/console.log" 2>/dev/null | grep --line-buffered '^progress: ' |
	sed -u 's/^progress: /run-bench: /') &
progress=$!
echo "run-bench: booting the VM for grid $grid; one line per download follows"
# The guest can write only into the directory given to vm-exec.sh.
VM_TIMEOUT=${VM_TIMEOUT:-7200} "$here/scripts/vm-exec.sh" "$tree" "$out" \
	"cd '$here' && MPUDP_DIR='$here' $guest"
rc=$?
sleep 1 # the last progress line
pkill -P "$progress" 2>/dev/null
kill "$progress" 2>/dev/null
wait "$progress" 2>/dev/null
grep -v '^progress: ' "$out/console.log" 2>/dev/null | tail -n 5
[ -s "$csv" ] || exit 1
python3 "$here/scripts/bench-report.py" "$csv" | tee "$out/$name.md"
exit "$rc"
