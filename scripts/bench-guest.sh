#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The benchmark grid runner, run as root inside the test VM: for every cell of grid GRID,
# builds the two paths, then for every tunnel downloads a 16 MiB file through OpenVPN RUNS
# times and appends one CSV line per download to OUT.
#
# Usage: [BENCH_TUNNELS="T..."] [BENCH_CELLS="CELL;CELL..."] bench-guest.sh GRID OUT_CSV [RUNS]
#   A cell is "RATE0 RATE1 RTT0 RTT1 LOSS [EXTRA]": rates in Mbit/s, round-trip times in ms,
#   LOSS in both directions of both paths, or LOSS0/LOSS1 for each path its own: a uniform
#   percentage, or geK, the paper's Gilbert-Elliott model (p = 1 %, r = 75 %, 1-h = 50 %)
#   with 1-k = K % (observed loss about 1, 2, 3 and 7 % for K = 0, 0.5, 1, 3). EXTRA is
#   +RATE2/RTT2 for a third path (no loss; MPUDP tunnels use it as path 2 and split 50
#   gives it 25 %, MPTCP opens a third subflow to it), or drop1=RATE@S for path 1's rate
#   dropping to RATE Mbit/s S seconds into each download (restored after it).
#   BENCH_CELLS and BENCH_TUNNELS replace the grid's own.
#
#   Grid          cells                                      tunnels             runs  paper
#   quick         10/10 Mbit/s, 20/20 and 20/100 ms, no loss  udp tcp mptcp        3   (make run)
#                                                            split50 seq50 rtt
#                                                            rate
#   symmetric     10/10, RTT 1 10 20 40 60 80 100 ms on both  udp tcp mptcp       20   Fig 7
#                 paths, no loss                             mptcp-ndiff split50 rtt
#   symmetric-ge  as symmetric, GE 1-k = 0 % (about 1 %)      same                20   Figs 4, 9
#   udp-vs-tcp    10/10, RTT 1 20 60 100 ms, uniform loss     udp tcp             20   Fig 6
#                 0.1 1 3 %
#   asymmetric    10/10, RTT 20 vs 20 40 60 80 100 ms, GE     mptcp split50       20   Figs 10, 11
#                 1-k = 0 0.5 1 3 %                          split75 split90 rtt
#   path-aware    10/10 at 20 vs 20..100 ms; 10/4 at 20/20    udp mptcp seq50      5   issues 3,
#                 and 20/100 ms; no loss                     seq75 rtt rate           13, 14
#   path-aware-tls 10/10 at 20/60 ms, 10/4 at 20/100 ms       the same, +tls       5   issue 13
#   path-aware-extra 10/10/5 at 20/40/30 ms (three paths);    udp mptcp seq50      3   issue 14
#                 10/10 at 20/20 ms, path 1 drops to 2 Mbit/s rate
#                 3 s in; no loss
#   loss-recovery as symmetric-ge (7 RTTs), and the clean     udp mptcp seq50      3   issue 15
#                 symmetric cells at 20 and 100 ms           seq50+fec seq50+red
#
# Tunnels (OpenVPN, cipher none, no DCO; the client connects to the server's primary address):
#   udp, tcp     single path (the primary)
#   mptcp        TCP run with `mptcpize run`; the server announces its second address, the
#                client opens one subflow to it: one subflow per path (the paper's fullmesh)
#   mptcp-ndiff  as mptcp, but the second subflow comes from a second client address on the
#                primary path: two subflows on one path (the paper's ndiffports)
#   splitN       MPUDP with the fixed split N (percent on the primary), probing off: datagrams
#                are not sequenced, so the receiver cannot restore their order
#   seqN         as splitN with probing on: datagrams are sequenced and the receiver's reorder
#                buffer restores their order
#   rtt          MPUDP with the rtt scheduler and probing (sequenced and reordered)
#   rate         MPUDP with the rate scheduler and probing (sequenced and reordered)
#   T+fec        MPUDP tunnel T with loss recovery: `fec auto` at both senders, `recv/fec 1`
#                at both receivers
#   T+red        MPUDP tunnel T in redundant mode: `fec redundant`, `recv/fec 1`
#   T+tls        tunnel T encrypted: TLS with certificates, AES-256-GCM, OpenVPN's default
#                64-packet replay window (tunnel_up's TUNNEL_TLS); last of the suffixes
# Besides goodput, each line records what the client's receiver (the download's end) did:
# its reorder counters' growth over the download (held, released by timeout or by the
# memory cap, late), the delay spread it measured at the end, and the replay lines both
# OpenVPNs logged meanwhile. They explain a sequenced cell's shortfall. Loss recovery's work
# over the download is recorded too: the server's repairs and copies sent, the client's
# datagrams rebuilt, and the sequence numbers its reorder buffer gave up (`skipped`: what
# the tunnel's TCP still saw lost).
# With BENCH_TRACE=1, OUT with .trace.csv for .csv gets the server's (the download's
# sender's) path readings twice a second during every download: what the scheduler saw.
# TCP is set up as the paper's Table 3 (socket buffers, no metrics saving); congestion control
# is the kernel's default, Cubic (BALIA is not in Linux).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=selftests/lib.sh
source "$here/selftests/lib.sh"

grid=${1:?usage: bench-guest.sh GRID OUT_CSV [RUNS]}
out=${2:?usage: bench-guest.sh GRID OUT_CSV [RUNS]}
size=$((16 * 1024 * 1024))
work=$(mktemp -d)
# The client's second address on the primary path, for mptcp-ndiff.
CLI_PRIMARY_2=10.0.1.3
# The third path's addresses (lib.sh's path_up 2), for the cells that have one.
CLI_PATH2=10.0.3.1
SRV_PATH2=10.0.3.2
# How many paths the current cell has.
PATHS=2
trap 'tunnel_down; topology_down; unload_modules' EXIT

# symmetric_cells LOSS RTT...: equal paths at each RTT.
symmetric_cells() {
	local loss=$1 rtt
	shift
	for rtt in "$@"; do cells+=("10 10 $rtt $rtt $loss"); done
}

cells=()
case $grid in
quick)
	runs=3
	cells=("10 10 20 20 0" "10 10 20 100 0")
	tunnels=(udp tcp mptcp split50 seq50 rtt rate)
	;;
symmetric | symmetric-ge)
	runs=20
	loss=0
	[ "$grid" = symmetric-ge ] && loss=ge0
	symmetric_cells "$loss" 1 10 20 40 60 80 100
	tunnels=(udp tcp mptcp mptcp-ndiff split50 rtt)
	;;
udp-vs-tcp)
	runs=20
	for loss in 0.1 1 3; do symmetric_cells "$loss" 1 20 60 100; done
	tunnels=(udp tcp)
	;;
asymmetric)
	runs=20
	for loss in ge0 ge0.5 ge1 ge3; do
		for rtt in 20 40 60 80 100; do cells+=("10 10 20 $rtt $loss"); done
	done
	tunnels=(mptcp split50 split75 split90 rtt)
	;;
path-aware)
	runs=5
	cells=("10 10 20 20 0" "10 10 20 40 0" "10 10 20 60 0" "10 10 20 80 0" "10 10 20 100 0"
		"10 4 20 20 0" "10 4 20 100 0")
	tunnels=(udp mptcp seq50 seq75 rtt rate)
	;;
path-aware-extra)
	runs=3
	cells=("10 10 20 40 0 +5/30" "10 10 20 20 0 drop1=2@3")
	tunnels=(udp mptcp seq50 rate)
	;;
loss-recovery)
	runs=3
	symmetric_cells ge0 1 10 20 40 60 80 100
	symmetric_cells 0 20 100
	tunnels=(udp mptcp seq50 seq50+fec seq50+red)
	;;
path-aware-tls)
	runs=5
	cells=("10 10 20 60 0" "10 4 20 100 0")
	tunnels=(udp+tls mptcp+tls seq50+tls seq75+tls rtt+tls)
	;;
*)
	echo "bench-guest: unknown grid $grid" >&2
	exit 2
	;;
esac
runs=${3:-$runs}
if [ -n "${BENCH_TUNNELS:-}" ]; then
	read -r -a tunnels <<<"$BENCH_TUNNELS"
fi
if [ -n "${BENCH_CELLS:-}" ]; then
	IFS=';' read -r -a cells <<<"$BENCH_CELLS"
fi

# table3_sysctls: the paper's Table 3. The socket buffer limits are global, the TCP ones per
# namespace.
table3_sysctls() {
	local ns
	sysctl -qw net.core.rmem_max=212992 net.core.rmem_default=212992 \
		net.core.wmem_max=212992 net.core.wmem_default=212992 || return 1
	for ns in "$NS_CLI" "$NS_SRV"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.tcp_rmem="4096 87380 6291456" \
			net.ipv4.tcp_wmem="4096 16384 4194304" net.ipv4.tcp_no_metrics_save=1 ||
			return 1
	done
}

# mptcp_paths none|fullmesh|ndiff: the MPTCP path manager's endpoints and limits (fullmesh:
# one subflow per path, the third path's too when the cell has one).
mptcp_paths() {
	local ns
	for ns in "$NS_CLI" "$NS_SRV"; do
		ip -n "$ns" mptcp endpoint flush
		ip -n "$ns" mptcp limits set subflow "$((PATHS - 1))" add_addr_accepted "$((PATHS - 1))"
	done
	in_cli ip addr del "$CLI_PRIMARY_2/24" dev eth0 2>/dev/null
	case $1 in
	fullmesh)
		ip -n "$NS_SRV" mptcp endpoint add "$SRV_ALTERNATE" dev eth1 signal &&
			if [ "$PATHS" = 3 ]; then
				ip -n "$NS_SRV" mptcp endpoint add "$SRV_PATH2" dev eth2 signal
			fi ;;
	ndiff)
		in_cli ip addr add "$CLI_PRIMARY_2/24" dev eth0 &&
			ip -n "$NS_CLI" mptcp endpoint add "$CLI_PRIMARY_2" dev eth0 subflow ;;
	esac
}

# configure TUNNEL: sets both ends up for one tunnel kind (single path: nothing in scope).
configure() {
	local tunnel=${1%+tls} ns fec=off recv_fec=0
	case $tunnel in
	*+fec) fec=auto recv_fec=1 ;;
	*+red) fec=redundant recv_fec=1 ;;
	esac
	tunnel=${tunnel%+fec}
	tunnel=${tunnel%+red}
	case $tunnel in
	mptcp) mptcp_paths fullmesh ;;
	mptcp-ndiff) mptcp_paths ndiff ;;
	*) mptcp_paths none ;;
	esac || return 1
	for ns in "$NS_CLI" "$NS_SRV"; do
		case $tunnel in
		udp | tcp | mptcp | mptcp-ndiff)
			ip netns exec "$ns" sh -c "echo > $SYSFS/peer && echo > $SYSFS/recv/peer &&
				echo 0 > $SYSFS/probing && echo 0 > $SYSFS/recv/probing" ;;
		split*)
			mpudp_configure "$ns" "${tunnel#split}" && mpudp_probing "$ns" 0 &&
				ip netns exec "$ns" sh -c "echo split > $SYSFS/scheduler" ;;
		seq*)
			mpudp_configure "$ns" "${tunnel#seq}" && mpudp_probing "$ns" &&
				ip netns exec "$ns" sh -c "echo split > $SYSFS/scheduler" ;;
		rtt | rate)
			mpudp_configure "$ns" 50 && mpudp_probing "$ns" &&
				ip netns exec "$ns" sh -c "echo $tunnel > $SYSFS/scheduler" ;;
		*)
			echo "bench-guest: unknown tunnel $tunnel" >&2
			return 1 ;;
		esac || return 1
		case $tunnel in
		split* | seq* | rtt | rate)
			{ [ "$PATHS" = 2 ] || third_path "$ns"; } &&
				ip netns exec "$ns" sh -c "echo $recv_fec > $SYSFS/recv/fec && echo $fec > $SYSFS/fec" ||
				return 1 ;;
		*) [ "$fec" = off ] || { echo "bench-guest: $1: loss recovery is MPUDP's" >&2 && return 1; } ;;
		esac
	done
}

# third_path NS: NS's MPUDP sends on eth2 as path 2 and takes the peer's datagrams from its
# eth2 address (after mpudp_configure, which set two paths).
third_path() {
	local peer
	if [ "$1" = "$NS_CLI" ]; then
		peer="$SRV_PRIMARY $SRV_ALTERNATE $SRV_PATH2"
	else
		peer="$CLI_PRIMARY $CLI_ALTERNATE $CLI_PATH2"
	fi
	ip netns exec "$1" sh -c "echo 'eth1 eth2' > $SYSFS/secondary && echo '$peer' > $SYSFS/peer &&
		echo '$peer' > $SYSFS/recv/peer"
}

# start TUNNEL: brings the tunnel up; for MPTCP, checks that it has its two subflows.
start() {
	local subflows tls=
	[ "$1" != "${1%+tls}" ] && tls=1
	case ${1%+tls} in
	tcp) TUNNEL_TLS=$tls tunnel_up "$work" tcp ;;
	mptcp*) TUNNEL_TLS=$tls tunnel_up "$work" tcp mptcpize run ;;
	*) TUNNEL_TLS=$tls tunnel_up "$work" ;;
	esac || return 1
	case $1 in
	mptcp*)
		subflows=$(in_cli ss -Htn state established "( dport = :$TUNNEL_PORT )" | wc -l)
		if [ "$subflows" != "$PATHS" ]; then
			echo "bench-guest: $1 has $subflows TCP subflows, not $PATHS:" >&2
			in_cli ss -tn state established >&2
			return 1
		fi ;;
	esac
}

# srv_wire BYTES|PACKETS: what the server sent on all the cell's paths so far (link layer).
srv_wire() {
	local i sum=0
	for ((i = 0; i < PATHS; i++)); do sum=$((sum + $(ifstat "$NS_SRV" "eth$i" "tx_$1"))); done
	echo "$sum"
}

# REORDER_COUNTERS: the client receiver's counters that grow over a download, as CSV columns.
REORDER_COUNTERS=(held timeout overflow late skipped)

# cli_reorder: those counters now, space-separated.
cli_reorder() {
	local c
	for c in "${REORDER_COUNTERS[@]}"; do printf '%s ' "$(knob "$NS_CLI" "recv/reorder_$c")"; done
}

# recovery_counters: loss recovery's counters that grow over a download (the server's
# repairs and copies, the client's rebuilt datagrams), space-separated.
recovery_counters() {
	echo "$(knob "$NS_SRV" tx_fec_repairs) $(knob "$NS_SRV" tx_fec_copies) $(knob "$NS_CLI" recv/rx_fec_rebuilt)"
}

# replay_lines: the replay complaints both OpenVPNs have logged so far.
replay_lines() {
	cat "$work"/ovpn-*.log 2>/dev/null | grep -ci replay
}

# trace_paths TUNNEL RUN: appends the server's path readings to $trace every 0.5 s until
# killed, one line per path: what the scheduler decided from.
TRACE_FIELDS=(share_permille sent_kbps delivered_kbps capacity_kbps srtt_us min_rtt_us loss_ppm)
trace_paths() {
	local t0 now
	t0=$(date +%s%N)
	while sleep 0.5; do
		now=$((($(date +%s%N) - t0) / 1000000))
		# One process per sample: TCG makes each `ip netns exec` cost tens of ms.
		# shellcheck disable=SC2016 # the inner shell expands them
		ip netns exec "$NS_SRV" sh -c 'cd "$1" && o=$(cat offered_kbps) && shift &&
			for p in primary secondary; do
				l=$p; for f; do l="$l,$(cat "paths/$p/$f")"; done; echo "$l,$o"
			done' - "$SYSFS" "${TRACE_FIELDS[@]}" | sed "s/^/$cell_csv,$1,$2,$now,/" >>"$trace"
	done
}
trace=${out%.csv}.trace.csv
if [ "${BENCH_TRACE:-0}" = 1 ] && ! [ -s "$trace" ]; then
	echo "rate0_mbit,rate1_mbit,rtt0_ms,rtt1_ms,loss,tunnel,run,ms,path$(printf ',%s' "${TRACE_FIELDS[@]}"),offered_kbps" >"$trace"
fi

load_modules || exit 1
mkdir -p "$work/www"
head -c "$size" /dev/urandom >"$work/www/file"
header="grid,rate0_mbit,rate1_mbit,rtt0_ms,rtt1_ms,loss,tunnel,run,bytes,seconds,goodput_mbit"
header+=",srv_secondary_permille,srv_wire_bytes,srv_wire_packets"
header+=$(printf ',cli_reorder_%s' "${REORDER_COUNTERS[@]}")",cli_delay_spread_us,replay_lines,extra"
header+=",srv_fec_repairs,srv_fec_copies,cli_fec_rebuilt"
[ -s "$out" ] || echo "$header" >"$out"
total=$((${#cells[@]} * ${#tunnels[@]} * runs))
done_count=0
for cell in "${cells[@]}"; do
	read -r rate0 rate1 rtt0 rtt1 loss extra <<<"$cell"
	cell_csv="$rate0,$rate1,$rtt0,$rtt1,$loss"
	# One-way delays in microseconds: the 1 ms RTT cells need half milliseconds.
	topology_up "${rate0}mbit" "$((rtt0 * 500))us" "$((rtt1 * 500))us" || exit 1
	path_netem 0 "${rate0}mbit" "$((rtt0 * 500))us" "${loss%%/*}" || exit 1
	path_netem 1 "${rate1}mbit" "$((rtt1 * 500))us" "${loss#*/}" || exit 1
	PATHS=2
	case $extra in
	+*/*)
		PATHS=3
		rate2=${extra#+} && rate2=${rate2%/*}
		path_up 2 "${rate2}mbit" "$((${extra#*/} * 500))us" || exit 1 ;;
	'' | drop1=*@*) ;;
	*)
		echo "bench-guest: unknown cell extra $extra" >&2
		exit 2 ;;
	esac
	table3_sysctls || exit 1
	for tunnel in "${tunnels[@]}"; do
		# A tunnel that cannot start counts its runs as failed; the grid goes on.
		up=1
		configure "$tunnel" && start "$tunnel" || up=
		[ -n "$up" ] || echo "bench-guest: $tunnel did not start; its runs count as failed" >&2
		for run in $(seq "$runs"); do
			b0=$(ifstat "$NS_SRV" eth0 tx_bytes)
			w0=$(srv_wire bytes)
			n0=$(srv_wire packets)
			read -r -a r0 <<<"$(cli_reorder)"
			read -r -a f0 <<<"$(recovery_counters)"
			replays=$(replay_lines)
			secs=
			tracer='' changer=''
			case $extra in
			drop1=*@*)
				drop=${extra#drop1=}
				(sleep "${drop#*@}" &&
					path_netem 1 "${drop%@*}mbit" "$((rtt1 * 500))us" "${loss#*/}") &
				changer=$! ;;
			esac
			if [ "${BENCH_TRACE:-0}" = 1 ]; then
				trace_paths "$tunnel" "$run" &
				tracer=$!
			fi
			if [ -n "$up" ]; then
				secs=$(fetch file "$work/got") && cmp -s "$work/www/file" "$work/got" || secs=
			fi
			if [ -n "$tracer" ]; then
				kill "$tracer"
				wait "$tracer" 2>/dev/null
			fi
			if [ -n "$changer" ]; then
				kill "$changer" 2>/dev/null
				wait "$changer" 2>/dev/null
				path_netem 1 "${rate1}mbit" "$((rtt1 * 500))us" "${loss#*/}" || exit 1
			fi
			wire=$(($(srv_wire bytes) - w0))
			packets=$(($(srv_wire packets) - n0))
			primary=$(($(ifstat "$NS_SRV" eth0 tx_bytes) - b0))
			share=$((wire > 0 ? (wire - primary) * 1000 / wire : 0))
			if [ -n "$secs" ]; then
				mbit=$(echo "scale=3; $size * 8 / $secs / 1000000" | bc)
			else
				mbit=failed
			fi
			read -r -a r1 <<<"$(cli_reorder)"
			reorder=
			for i in "${!r0[@]}"; do reorder+=",$((r1[i] - r0[i]))"; done
			reorder+=",$(knob "$NS_CLI" recv/delay_spread_us),$(($(replay_lines) - replays)),$extra"
			read -r -a f1 <<<"$(recovery_counters)"
			for i in "${!f0[@]}"; do reorder+=",$((f1[i] - f0[i]))"; done
			line="$grid,$rate0,$rate1,$rtt0,$rtt1,$loss,$tunnel,$run,$size,$secs,$mbit,$share,$wire,$packets$reorder"
			echo "$line" >>"$out"
			echo "$line"
			# One progress line per download; run-bench.sh shows these on the host as they come.
			done_count=$((done_count + 1))
			echo "progress: [$done_count/$total] ${rate0}/${rate1} Mbit/s, ${rtt0}/${rtt1} ms RTT, loss $loss${extra:+ $extra}: $tunnel run $run/$runs: $mbit Mbit/s"
		done
		tunnel_down
	done
done
