#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Static-key toggles under a UDP flood, one source of toggles at a time: reproduces (or rules
# out) the guest panic "Oops: int3" at a static-branch site that the load/unload cycle test
# once hit. Runs as root in the test VM; scripts/key-toggle-stress.sh boots it and counts.
#
# Usage: key_toggle_stress.sh MODE SECONDS
#   netstamp  no MPUDP module loaded: a user socket turns SO_TIMESTAMPNS on and off, which
#             enables and disables the kernel's netstamp_needed_key (net_timestamp_check,
#             on every received packet's path) through its deferred work
#   hooks     load and unload both modules, no probing: each load enables and each unload
#             disables the udp.c hook keys, unless the patch keeps them enabled
#   hooks+netstamp  both of the above at once
#   cycles    what the selftest's load/unload cycles do: random load/unload orders, with
#             configuration and probing started in every cycle
#   probing   modules loaded once; probing started and stopped in a loop
#   none      the flood alone (the control)
# Prints "MODE: N rounds in S s" when it survives (a round: one socket on and off, one load
# and unload of both modules, one cycle, one probing start and stop); a panic leaves its oops
# in vng.log.

set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=selftests/lib.sh
source "$here/lib.sh"

mode=${1:?usage: key_toggle_stress.sh MODE SECONDS}
seconds=${2:?usage: key_toggle_stress.sh MODE SECONDS}
FLOOD_PPS=${FLOOD_PPS:-10000}

unload_modules
topology_up 10mbit 10 10 || { echo "cannot build the topology"; exit 1; }
# The flood crosses both vCPUs' receive paths (veth_xmit -> netif_rx) all the time.
for dst in "$SRV_PRIMARY" "$SRV_ALTERNATE"; do
	# Not through in_cli: `kill` must reach the sender itself, not a subshell.
	ip netns exec "$NS_CLI" "$UDP_TOOL" send --dst "$dst" --port "$TUNNEL_PORT" --count 0 \
		--pps "$FLOOD_PPS" >/dev/null &
done

# toggle_netstamp SECONDS: a user socket turns SO_TIMESTAMPNS on and off until SECONDS have
# passed, holding each state long enough for the deferred key work to run; prints the rounds.
toggle_netstamp() {
	/usr/bin/python3 - "$1" <<'EOF'
import socket, sys, time
SO_TIMESTAMPNS = 35  # asm-generic/socket.h; Python's socket module does not name it
end = time.monotonic() + float(sys.argv[1])
n = 0
while time.monotonic() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    time.sleep(0.01)
    s.close()
    time.sleep(0.01)
    n += 1
print(n)
EOF
}

rounds=0
end=$((SECONDS + seconds))
case $mode in
netstamp)
	rounds=$(toggle_netstamp "$seconds")
	;;
hooks | hooks+netstamp)
	[ "$mode" = hooks ] || toggle_netstamp "$seconds" >/dev/null &
	while [ $SECONDS -lt $end ]; do
		load_modules || { echo "load failed"; exit 1; }
		unload_modules
		rounds=$((rounds + 1))
	done
	;;
cycles)
	load_modules
	while [ $SECONDS -lt $end ]; do
		reload_random || { echo "load or unload failed"; exit 1; }
		mpudp_configure "$NS_CLI" 50 && mpudp_probing "$NS_CLI" || { echo "configure failed"; exit 1; }
		rounds=$((rounds + 1))
	done
	;;
probing)
	load_modules && mpudp_configure "$NS_CLI" 50 || { echo "load failed"; exit 1; }
	while [ $SECONDS -lt $end ]; do
		mpudp_probing "$NS_CLI" && mpudp_probing "$NS_CLI" 0 || { echo "probing failed"; exit 1; }
		rounds=$((rounds + 1))
	done
	;;
none)
	sleep "$seconds"
	;;
*)
	echo "unknown mode $mode"
	exit 2
	;;
esac

[ "$rounds" -ge 0 ] 2>/dev/null || { echo "$mode: no rounds counted"; exit 1; }
jobs -p | xargs -r kill 2>/dev/null
wait 2>/dev/null
unload_modules
topology_down
echo "$mode: $rounds rounds in $seconds s"
if dmesg | grep -E 'WARNING:|BUG:|Oops|Call Trace'; then
	exit 1
fi
