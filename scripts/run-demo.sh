#!/usr/bin/env bash
# Runs the demo (scripts/demo-guest.sh) in the test VM and prints its report.
# Usage: run-demo.sh KERNEL_TREE
set -uo pipefail
tree=${1:?usage: run-demo.sh KERNEL_TREE}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/.build/demo
"$here/scripts/vm-exec.sh" "$tree" "$out" "cd '$here' && MPUDP_DIR='$here' scripts/demo-guest.sh"
rc=$?
cat "$out/console.log" 2>/dev/null
exit "$rc"
