#!/usr/bin/env bash
# Boots the test kernel in virtme-ng and runs one command in it as root.
#
# Usage: vm-exec.sh KERNEL_TREE OUT_DIR COMMAND
#   The host's root is visible read-only in the guest; OUT_DIR is the one writable host
#   directory, and the guest command's output goes to OUT_DIR/console.log (vng's own stdout is
#   unreliable when redirected, as in CI). Exits with the guest command's exit code.
#   KVM is used only when the CPU offers it; otherwise TCG (slower, always works).
#   Environment: VM_MEMORY (2G), VM_TIMEOUT (2400 s), VM_APPEND (extra kernel parameters),
#   VM_TCG_THREAD (multi, QEMU's default: one host thread per vCPU; or single).
set -euo pipefail

tree=$1 out=$2 cmd=$3
vng=$(command -v vng || true)
[ -n "$vng" ] || { echo "vm-exec: vng not found: run scripts/install-deps.sh" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/rc" "$out/console.log"

accel=(--disable-kvm "--qemu-opts=-accel tcg,thread=${VM_TCG_THREAD:-multi}")
if grep -qE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
	accel=()
fi

# The guest writes its exit code last, so a missing rc file means the VM died or timed out.
guest="($cmd) >$out/console.log 2>&1; echo \$? >$out/rc"
# The kernel console (oops, BUG, WARNING: log levels up to 4) goes to vng.log, so that a guest
# that dies still leaves its last words on the host.
timeout "${VM_TIMEOUT:-2400}" "$vng" --run "$tree" "${accel[@]}" --cpus 2 --memory "${VM_MEMORY:-2G}" \
	--verbose --append "loglevel=5 ${VM_APPEND:-}" --rwdir "$out" --exec "$guest" </dev/null >"$out/vng.log" 2>&1 || true

if [ ! -f "$out/rc" ]; then
	echo "vm-exec: the VM did not finish the command; vng said:" >&2
	grep -vE 'virtme|Command line|^\s*$' "$out/vng.log" | tail -n 60 >&2
	exit 2
fi
exit "$(cat "$out/rc")"
