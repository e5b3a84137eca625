#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The hook-overhead benchmark, run as root inside the test VM: datagrams per second of one
# UDP sender thread (selftests/udp_flood, 100-byte payloads, one sendto() each) into a dummy
# interface, with no MPUDP module loaded, with the modules loaded but the socket out of scope,
# and with the socket in scope (split 100: nothing steered; split 50: half steered through
# the secondary interface). Configurations alternate within each repetition, so drift in the
# VM's speed affects all alike, and every other repetition runs them in reverse order, so
# that what a position costs (just after a module load, say) falls on all alike; many short
# repetitions (100,000 datagrams each) give the report many such pairs. Appends "config,rep,pps" lines to OUT_CSV.
#
# Usage: overhead-guest.sh FLOOD_BINARY OUT_CSV [REPS]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=selftests/lib.sh
source "$here/selftests/lib.sh"

flood=${1:?usage: overhead-guest.sh FLOOD_BINARY OUT_CSV [REPS]}
out=${2:?usage: overhead-guest.sh FLOOD_BINARY OUT_CSV [REPS]}
reps=${3:-30}
count=100000
ns=mpudp-ovh
trap 'ip netns del $ns 2>/dev/null; unload_modules' EXIT

ip netns add "$ns"
for i in 0 1; do
	ip -n "$ns" link add "dummy$i" type dummy
	ip -n "$ns" addr add "10.9.$i.1/24" dev "dummy$i"
	ip -n "$ns" link set "dummy$i" up
done

# measure CONFIG PORT: one run of the flood to 10.9.0.2:PORT, as line CONFIG,REP,PPS.
measure() {
	local pps
	pps=$(ip netns exec "$ns" "$flood" 10.9.0.2 "$2" "$count" 100 | cut -d' ' -f1)
	echo "$1,$rep,$pps" | tee -a "$out"
}

# configured SPLIT: modules loaded, the namespace's tunnel is 10.9.0.2:5201 over dummy0/dummy1.
configured() {
	lsmod | grep -q '^mpudp_send' || load_modules
	ip netns exec "$ns" sh -c "echo $1 > $SYSFS/split && echo dummy1 > $SYSFS/secondary &&
		echo '10.9.0.2 10.9.1.2' > $SYSFS/peer && echo 5201 > $SYSFS/port"
}

echo "config,rep,pps" >"$out"
for rep in $(seq "$reps"); do
	if [ $((rep % 2)) = 1 ]; then
		unload_modules
		measure no-module 5201
		configured 100
		measure out-of-scope 5202
		measure in-scope-split100 5201
		configured 50
		measure in-scope-split50 5201
	else
		configured 50
		measure in-scope-split50 5201
		configured 100
		measure in-scope-split100 5201
		measure out-of-scope 5202
		unload_modules
		measure no-module 5201
	fi
done
