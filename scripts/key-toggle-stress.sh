#!/usr/bin/env bash
# Repeats selftests/key_toggle_stress.sh in fresh VMs and counts the runs that panicked:
# the on-demand reproduction of the static-branch int3 panic (README, "Static keys under
# TCG").
#
# Usage: key-toggle-stress.sh KERNEL_TREE MODE SECONDS RUNS
#   MODE as key_toggle_stress.sh takes it. Environment: VM_TCG_THREAD (multi or single),
#   FLOOD_PPS (per path, default 10000), MPUDP_KO_DIR (the modules to load). Each run's VM log is kept in
#   .build/key-stress/MODE-THREAD-N/vng.log. Exits non-zero if any run failed.
set -uo pipefail

tree=${1:?usage: key-toggle-stress.sh KERNEL_TREE MODE SECONDS RUNS}
mode=${2:?} seconds=${3:?} runs=${4:?}
here=$(cd "$(dirname "$0")/.." && pwd)
thread=${VM_TCG_THREAD:-multi}
panics=0 other=0 survived=0
for i in $(seq "$runs"); do
	out=$here/.build/key-stress/$mode-$thread-$i
	rm -rf "$out"
	guest="cd '$here' && MPUDP_DIR='$here' MPUDP_KO_DIR='${MPUDP_KO_DIR:-$here}' FLOOD_PPS='${FLOOD_PPS:-10000}' selftests/key_toggle_stress.sh $mode $seconds"
	VM_TIMEOUT=$((seconds + 300)) "$here/scripts/vm-exec.sh" "$tree" "$out" "$guest" 2>/dev/null
	rc=$?
	if grep -qE 'Oops|Kernel panic' "$out/vng.log" 2>/dev/null; then
		panics=$((panics + 1))
		echo "run $i: PANIC: $(grep -m1 -E 'Oops' "$out/vng.log") at $(grep -m1 -E 'RIP: ' "$out/vng.log")"
	elif [ "$rc" = 0 ]; then
		survived=$((survived + 1))
		echo "run $i: survived: $(tail -n 1 "$out/console.log")"
	else
		other=$((other + 1))
		echo "run $i: failed (rc $rc) without a panic: $(tail -n 3 "$out/console.log" 2>/dev/null)"
	fi
done
echo "$mode, TCG thread=$thread, $seconds s per run: $panics panicked, $survived survived, $other failed otherwise, of $runs"
[ "$panics" = 0 ] && [ "$other" = 0 ]
