#!/usr/bin/env bash
# Runs selftests/mpudp.sh in the test VM and reports it on the host.
#
# Usage: run-selftests.sh KERNEL_TREE
# Prints the KTAP output, the guest's kernel warnings if any, and a last line
# "N passed, N failed" (", N skipped" when ONLY selected some tests); exits non-zero on any
# failure or if the VM did not finish.
set -uo pipefail

tree=${1:?usage: run-selftests.sh KERNEL_TREE}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/.build/selftests
rm -rf "$out"
mkdir -p "$out"

# The guest does not inherit the host's environment: pass the suite's knobs explicitly.
guest="cd '$here' && MPUDP_DIR='$here' MPUDP_KO_DIR='${MPUDP_KO_DIR:-$here}'"
guest+=" FUZZ_WRITES='${FUZZ_WRITES:-10000}' STRESS_CYCLES='${STRESS_CYCLES:-200}'"
guest+=" RECV_TIMEOUT='${RECV_TIMEOUT:-5}' SRTT_TOLERANCE_PCT='${SRTT_TOLERANCE_PCT:-10}'"
guest+=" SRTT_DELAYS_MS='${SRTT_DELAYS_MS:-10 50}' HELD_DELAY_MS='${HELD_DELAY_MS:-1500}'"
guest+=" CLOSING_MAX_MS='${CLOSING_MAX_MS:-500}' RATE_BOUNDS='${RATE_BOUNDS:-1}'"
guest+=" ONLY='${ONLY:-}'"
guest+=" selftests/mpudp.sh; rc=\$?; dmesg >'$out/dmesg.log'; exit \$rc"
start=$(date +%s)
"$here/scripts/vm-exec.sh" "$tree" "$out" "$guest"
rc=$?
cat "$out/console.log" 2>/dev/null
echo "# selftests took $(($(date +%s) - start)) s in the VM; guest dmesg: $out/dmesg.log"

skipped=$(grep -cE '^ok [0-9]+ .* # SKIP' "$out/console.log" 2>/dev/null)
passed=$(($(grep -cE '^ok [0-9]+' "$out/console.log" 2>/dev/null) - skipped))
failed=$(grep -cE '^not ok [0-9]+' "$out/console.log" 2>/dev/null)
planned=$(sed -nE 's/^1\.\.([0-9]+)$/\1/p' "$out/console.log" 2>/dev/null | head -n 1)
# Tests the plan announced but that never reported (the run died) count as failed.
missing=$((${planned:-0} - passed - failed - skipped))
[ "$missing" -gt 0 ] && failed=$((failed + missing))
[ "$rc" = 0 ] || [ "$failed" -gt 0 ] || failed=1
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$rc" = 0 ] && [ "$failed" = 0 ]
