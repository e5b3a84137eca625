#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The benchmark grid runner, run as root inside the test VM: for every cell of grid GRID,
# builds the two paths, then for every tunnel downloads a 16 MiB file through OpenVPN RUNS
# times and appends one CSV line per download to OUT.
#
# Usage: [BENCH_TUNNELS="T..."] bench-guest.sh GRID OUT_CSV [RUNS]
#   Grids (a cell is "RATE0 RATE1 RTT0_MS RTT1_MS"; rates in Mbit/s, RTTs round trip):
#   path-aware  10/10 Mbit/s at RTT 20 ms vs 20, 40, 60, 80, 100 ms; 10/4 Mbit/s at 20/20 and
#               20/100 ms. Tunnels: single-path UDP, MPUDP split 50/75/90, MPUDP rtt.
#   quick       10/10 Mbit/s at 20/20 and 20/100 ms; single-path UDP and TCP, TCP over MPTCP
#               (an endpoint on each path, as the paper's fullmesh), MPUDP split 50 and rtt.
#               About 8 minutes under TCG; what `make run` shows.
# Tunnels: udp and tcp (single path: the primary), mptcp (OpenVPN over TCP run with
# `mptcpize run`, the in-kernel path manager with the second path's addresses as endpoints),
# splitN (MPUDP, fixed split N), rtt (MPUDP, rtt scheduler with probing).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=selftests/lib.sh
source "$here/selftests/lib.sh"

grid=${1:?usage: bench-guest.sh GRID OUT_CSV [RUNS]}
out=${2:?usage: bench-guest.sh GRID OUT_CSV [RUNS]}
size=$((16 * 1024 * 1024))
work=$(mktemp -d)
trap 'tunnel_down; topology_down; unload_modules' EXIT

case $grid in
path-aware)
	runs=${3:-5}
	cells=("10 10 20 20" "10 10 20 40" "10 10 20 60" "10 10 20 80" "10 10 20 100"
		"10 4 20 20" "10 4 20 100")
	tunnels=(udp split50 split75 split90 rtt)
	;;
quick)
	runs=${3:-3}
	cells=("10 10 20 20" "10 10 20 100")
	tunnels=(udp tcp mptcp split50 rtt)
	;;
*)
	echo "bench-guest: unknown grid $grid" >&2
	exit 2
	;;
esac
# BENCH_TUNNELS="rtt split50" measures only those tunnels of the grid.
if [ -n "${BENCH_TUNNELS:-}" ]; then
	read -r -a tunnels <<<"$BENCH_TUNNELS"
fi

# mptcp_paths on|off: the second path's addresses as MPTCP endpoints (the server announces
# its own, the client opens a subflow from its own), or no endpoints.
mptcp_paths() {
	local ns
	for ns in "$NS_CLI" "$NS_SRV"; do
		ip -n "$ns" mptcp endpoint flush
		ip -n "$ns" mptcp limits set subflow 4 add_addr_accepted 4
	done
	if [ "$1" = on ]; then
		ip -n "$NS_SRV" mptcp endpoint add "$SRV_ALTERNATE" dev eth1 signal
		ip -n "$NS_CLI" mptcp endpoint add "$CLI_ALTERNATE" dev eth1 subflow
	fi
}

# configure TUNNEL: sets both ends up for one tunnel kind (single-path UDP: nothing in scope).
configure() {
	local tunnel=$1 ns
	mptcp_paths "$([ "$tunnel" = mptcp ] && echo on || echo off)"
	for ns in "$NS_CLI" "$NS_SRV"; do
		case $tunnel in
		udp | tcp | mptcp)
			ip netns exec "$ns" sh -c "echo > $SYSFS/peer && echo > $SYSFS/recv/peer &&
				echo 0 > $SYSFS/probe_port && echo 0 > $SYSFS/recv/probe_port" ;;
		split*)
			mpudp_configure "$ns" "${tunnel#split}" && mpudp_probing "$ns" 0 &&
				ip netns exec "$ns" sh -c "echo split > $SYSFS/scheduler" ;;
		rtt)
			mpudp_configure "$ns" 50 && mpudp_probing "$ns" &&
				ip netns exec "$ns" sh -c "echo rtt > $SYSFS/scheduler" ;;
		esac || return 1
	done
}

load_modules
mkdir -p "$work/www"
head -c "$size" /dev/urandom >"$work/www/file"
[ -s "$out" ] || echo "grid,rate0_mbit,rate1_mbit,rtt0_ms,rtt1_ms,tunnel,run,seconds,goodput_mbit,srv_secondary_permille" >"$out"
for cell in "${cells[@]}"; do
	read -r rate0 rate1 rtt0 rtt1 <<<"$cell"
	topology_up "${rate0}mbit" $((rtt0 / 2)) $((rtt1 / 2))
	path_netem 1 "${rate1}mbit" $((rtt1 / 2))
	for tunnel in "${tunnels[@]}"; do
		configure "$tunnel" || { echo "bench: cannot configure $tunnel" >&2; exit 1; }
		case $tunnel in
		tcp) tunnel_up "$work" tcp ;;
		mptcp) tunnel_up "$work" tcp mptcpize run ;;
		*) tunnel_up "$work" ;;
		esac || exit 1
		for run in $(seq "$runs"); do
			p0=$(knob "$NS_SRV" tx_primary_datagrams)
			s0=$(knob "$NS_SRV" tx_secondary_datagrams)
			secs=$(fetch file "$work/got") && cmp -s "$work/www/file" "$work/got" || secs=
			p=$(($(knob "$NS_SRV" tx_primary_datagrams) - p0))
			s=$(($(knob "$NS_SRV" tx_secondary_datagrams) - s0))
			share=$((p + s > 0 ? s * 1000 / (p + s) : 0))
			if [ -n "$secs" ]; then
				mbit=$(echo "scale=3; $size * 8 / $secs / 1000000" | bc)
			else
				mbit=failed
			fi
			line="$grid,$rate0,$rate1,$rtt0,$rtt1,$tunnel,$run,$secs,$mbit,$share"
			echo "$line" >>"$out"
			echo "$line"
		done
		tunnel_down
	done
done
