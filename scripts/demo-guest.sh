#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The `make run` demo, run as root inside the test VM: a 16 MiB download through OpenVPN over
# single-path UDP, then over MPUDP (split 50), on two 10 Mbit/s, 20 ms RTT paths.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=selftests/lib.sh
source "$here/selftests/lib.sh"

size=$((16 * 1024 * 1024))
work=$(mktemp -d)
trap 'tunnel_down; topology_down; unload_modules' EXIT

load_modules
topology_up 10mbit 10 10
mkdir -p "$work/www"
head -c "$size" /dev/urandom >"$work/www/file"

goodput() { echo "scale=2; $size * 8 / $1 / 1000000" | bc; }

echo "== single-path UDP (modules loaded, tunnel not configured: nothing is steered)"
tunnel_up "$work"
single=$(fetch file "$work/got-single")
cmp "$work/www/file" "$work/got-single"
tunnel_down

echo "== MPUDP, split 50 on both ends"
mpudp_configure "$NS_CLI" 50
mpudp_configure "$NS_SRV" 50
tunnel_up "$work"
multi=$(fetch file "$work/got-multi")
cmp "$work/www/file" "$work/got-multi"
tunnel_down

echo
echo "16 MiB download through OpenVPN (UDP, cipher none), paths 10 Mbit/s + 10 Mbit/s, RTT 20 ms"
printf '%-22s %10s %16s\n' tunnel seconds "goodput Mbit/s"
printf '%-22s %10s %16s\n' "single-path UDP" "$single" "$(goodput "$single")"
printf '%-22s %10s %16s\n' "MPUDP split 50" "$multi" "$(goodput "$multi")"
echo
echo "MPUDP per-path counters (datagrams / payload bytes):"
for ns in "$NS_CLI" "$NS_SRV"; do
	printf '%s: sent primary %s / %s, secondary %s / %s, fallback %s; received primary %s, secondary %s\n' \
		"$ns" "$(knob "$ns" tx_primary_datagrams)" "$(knob "$ns" tx_primary_bytes)" \
		"$(knob "$ns" tx_secondary_datagrams)" "$(knob "$ns" tx_secondary_bytes)" \
		"$(knob "$ns" tx_fallback_datagrams)" \
		"$(knob "$ns" recv/rx_primary_datagrams)" "$(knob "$ns" recv/rx_secondary_datagrams)"
done
