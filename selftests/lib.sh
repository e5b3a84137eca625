#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The MPUDP test topology: two namespaces joined by two emulated paths.
#
#   mpudp-cli                                   mpudp-srv
#   eth0 10.0.1.1/24 <== primary path ==>   eth0 10.0.1.2/24
#   eth1 10.0.2.1/24 <== secondary path ==> eth1 10.0.2.2/24
#
# Each path is a veth pair with tc netem (rate, one-way delay, loss) on both ends.
# Sourced by selftests/mpudp.sh and the benchmark scripts; needs root.

NS_CLI=mpudp-cli
NS_SRV=mpudp-srv
CLI_PRIMARY=10.0.1.1
SRV_PRIMARY=10.0.1.2
CLI_ALTERNATE=10.0.2.1
SRV_ALTERNATE=10.0.2.2
TUNNEL_PORT=1194
# Where each end's mpudp_recv answers path probes, when probing is on.
SYSFS=/sys/kernel/mpudp
MPUDP_DIR=${MPUDP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# Where the built .ko files are (the debug variant builds them elsewhere).
MPUDP_KO_DIR=${MPUDP_KO_DIR:-$MPUDP_DIR}

in_cli() { ip netns exec "$NS_CLI" "$@"; }
in_srv() { ip netns exec "$NS_SRV" "$@"; }

# netem_delay DELAY: DELAY as netem takes it (a bare number is milliseconds; "500us" stays).
netem_delay() {
	case $1 in
	*[a-z]*) echo "$1" ;;
	*) echo "${1}ms" ;;
	esac
}

# netem_loss LOSS: netem's loss arguments. A number is a uniform loss percentage; geK is the
# paper's Gilbert-Elliott model (p = 1 %, r = 75 %, 1-h = 50 %) with 1-k = K %.
netem_loss() {
	case $1 in
	ge*) echo "loss gemodel 1% 75% 50% ${1#ge}%" ;;
	*) echo "loss random ${1}%" ;;
	esac
}

# path_up INDEX RATE ONE_WAY_DELAY: (re)creates eth$INDEX in both namespaces.
path_up() {
	local i=$1 rate=$2 delay end
	delay=$(netem_delay "$3")
	ip link add "eth$i" netns "$NS_CLI" type veth peer name "eth$i" netns "$NS_SRV"
	in_cli ip addr add "10.0.$((i + 1)).1/24" dev "eth$i"
	in_srv ip addr add "10.0.$((i + 1)).2/24" dev "eth$i"
	for end in in_cli in_srv; do
		# netem's usual 1000-packet queue: a deeper one would bloat TCP's RTT to seconds.
		$end tc qdisc add dev "eth$i" root netem rate "$rate" delay "$delay" limit 1000
		$end ip link set "eth$i" up
	done
}

# path_netem INDEX RATE ONE_WAY_DELAY [LOSS]: changes path INDEX's emulation on both ends;
# LOSS as netem_loss takes it (a loss of 100 blackholes the path in both directions).
path_netem() {
	local i=$1 rate=$2 delay loss_args end
	delay=$(netem_delay "$3")
	read -r -a loss_args <<<"$(netem_loss "${4:-0}")"
	for end in in_cli in_srv; do
		$end tc qdisc change dev "eth$i" root netem rate "$rate" delay "$delay" \
			"${loss_args[@]}" limit 1000 || return 1
	done
}

# topology_up RATE DELAY_PRIMARY DELAY_SECONDARY (one-way delays, as netem_delay takes them).
topology_up() {
	local rate=$1 ns
	topology_down
	for ns in "$NS_CLI" "$NS_SRV"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# No IPv6 chatter in the interface counters the tests read.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1
	done
	path_up 0 "$rate" "$2"
	path_up 1 "$rate" "$3"
	# Wait for both paths to carry traffic (ARP resolved) before any test counts packets.
	in_cli ping -q -c 1 -W 5 "$SRV_PRIMARY" >/dev/null
	in_cli ping -q -c 1 -W 5 "$SRV_ALTERNATE" >/dev/null
}

topology_down() {
	ip netns del "$NS_CLI" 2>/dev/null || true
	ip netns del "$NS_SRV" 2>/dev/null || true
}

load_modules() {
	insmod "$MPUDP_KO_DIR/mpudp_send.ko" && insmod "$MPUDP_KO_DIR/mpudp_recv.ko"
}

unload_modules() {
	rmmod mpudp_send 2>/dev/null || true
	rmmod mpudp_recv 2>/dev/null || true
}

# reload_random: unloads one module, or both in a random order, and loads what it unloaded
# (the load/unload cycle tests' step); fails if a load or unload fails.
reload_random() {
	case $((RANDOM % 4)) in
	0) rmmod mpudp_send && rmmod mpudp_recv && load_modules ;;
	1) rmmod mpudp_recv && rmmod mpudp_send && load_modules ;;
	2) rmmod mpudp_send && insmod "$MPUDP_KO_DIR/mpudp_send.ko" ;;
	3) rmmod mpudp_recv && insmod "$MPUDP_KO_DIR/mpudp_recv.ko" ;;
	esac
}

# mpudp_configure NS SPLIT: both ends of the tunnel in NS use eth1 as their secondary path,
# know the other end's two addresses, and split at SPLIT (the fixed-split scheduler).
mpudp_configure() {
	local ns=$1 split=$2 peer
	if [ "$ns" = "$NS_CLI" ]; then
		peer="$SRV_PRIMARY $SRV_ALTERNATE"
	else
		peer="$CLI_PRIMARY $CLI_ALTERNATE"
	fi
	ip netns exec "$ns" sh -c "
		echo $split > $SYSFS/split &&
		echo split > $SYSFS/scheduler &&
		echo eth1 > $SYSFS/secondary &&
		echo '$peer' > $SYSFS/peer &&
		echo $TUNNEL_PORT > $SYSFS/port &&
		echo '$peer' > $SYSFS/recv/peer &&
		echo $TUNNEL_PORT > $SYSFS/recv/port"
}

# mpudp_probing NS [ON]: NS answers its peer's probes and probes its peer (0: neither; the
# default 1). Restarting probing starts the measurements afresh. The responder is only
# written, not restarted: `recv/probing 0` sends the peer a closing message, after which the
# peer asks again only in 10 s.
mpudp_probing() {
	local ns=$1 on=${2:-1}
	ip netns exec "$ns" sh -c "echo 0 > $SYSFS/probing && echo $on > $SYSFS/recv/probing &&
		echo $on > $SYSFS/probing"
}

# knob NS FILE: a sysfs value as seen from NS.
knob() { ip netns exec "$1" cat "$SYSFS/$2"; }

# ifstat NS DEV COUNTER: an interface counter, e.g. tx_packets.
ifstat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

# The datagram tool, by path so that `ip netns exec` can run it.
# shellcheck disable=SC2034 # used by the scripts that source this file
UDP_TOOL=$MPUDP_DIR/selftests/udp_tool.py

# json_get JSON KEY: one field of udp_tool's output (sources become "addr=count ...").
json_get() {
	/usr/bin/python3 -c '
import json, sys
v = json.loads(sys.argv[1])[sys.argv[2]]
print(" ".join(f"{k}={v[k]}" for k in sorted(v)) if isinstance(v, dict) else v)' "$1" "$2"
}

# tunnel_up WORKDIR [PROTO [WRAPPER...]]: a point-to-point OpenVPN tunnel (no DCO, cipher
# none as in the paper) between cli (10.8.0.2) and srv (10.8.0.1), plus an HTTP server in
# srv serving WORKDIR/www. PROTO is udp (default) or tcp (the client connects to the
# server's primary address); WRAPPER (for example `mptcpize run`) starts both OpenVPNs.
# With TUNNEL_TLS set, the tunnel is encrypted instead: TLS with certificates, AES-256-GCM
# and OpenVPN's default 64-packet replay window. Returns once a ping crosses the tunnel.
tunnel_up() {
	local work=$1 proto=${2:-udp} i
	shift $(($# < 2 ? $# : 2))
	local wrap=("$@") srv_proto=udp cli_proto=udp srv_crypto cli_crypto
	[ "$proto" = tcp ] && srv_proto=tcp-server cli_proto=tcp-client
	mkdir -p "$work/www"
	srv_crypto=(--cipher none --auth none) cli_crypto=(--cipher none --auth none)
	if [ -n "${TUNNEL_TLS:-}" ]; then
		tls_material "$work/pki" || return 1
		srv_crypto=(--tls-server --dh none --ca "$work/pki/ca.crt" --cert "$work/pki/server.crt"
			--key "$work/pki/server.key" --data-ciphers AES-256-GCM)
		cli_crypto=(--tls-client --ca "$work/pki/ca.crt" --cert "$work/pki/client.crt"
			--key "$work/pki/client.key" --remote-cert-tls server --data-ciphers AES-256-GCM)
	fi
	local ovpn=(openvpn --dev tun0 --port "$TUNNEL_PORT" --disable-dco --verb 3 --daemon)
	in_srv "${wrap[@]}" "${ovpn[@]}" "${srv_crypto[@]}" --proto "$srv_proto" \
		--ifconfig 10.8.0.1 10.8.0.2 --log "$work/ovpn-srv.log" || return 1
	in_cli "${wrap[@]}" "${ovpn[@]}" "${cli_crypto[@]}" --proto "$cli_proto" \
		--ifconfig 10.8.0.2 10.8.0.1 --remote "$SRV_PRIMARY" --log "$work/ovpn-cli.log" || return 1
	for i in $(seq 60); do
		in_cli ping -q -c 1 -W 1 10.8.0.1 >/dev/null 2>&1 && break
		sleep 1
	done
	# Started only now: OpenVPN assigns 10.8.0.1 after it has daemonised.
	in_srv sh -c "cd '$work/www' && exec /usr/bin/python3 -m http.server --bind 10.8.0.1 8080" \
		>/dev/null 2>&1 &
	for i in $(seq 30); do
		in_cli wget -q -t 1 -T 2 -O /dev/null http://10.8.0.1:8080/ && return 0
		sleep 1
	done
	echo "tunnel did not come up; server and client logs:" >&2
	tail -n 8 "$work/ovpn-srv.log" "$work/ovpn-cli.log" >&2
	tunnel_down
	return 1
}

# tls_material DIR: a CA and a server and a client certificate it signed (EC P-256, with the
# extended key usages OpenVPN's --remote-cert-tls checks), in DIR; kept once made.
tls_material() {
	local dir=$1 end usage
	[ -f "$dir/client.crt" ] && return 0
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=mpudp-test-ca -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null || return 1
	for end in server client; do
		usage=clientAuth
		[ "$end" = server ] && usage=serverAuth
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$end" \
			-keyout "$dir/$end.key" -out "$dir/$end.csr" 2>/dev/null &&
			printf 'extendedKeyUsage=%s\nkeyUsage=digitalSignature,keyAgreement\n' "$usage" >"$dir/$end.ext" &&
			openssl x509 -req -in "$dir/$end.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
				-CAcreateserial -days 2 -extfile "$dir/$end.ext" -out "$dir/$end.crt" 2>/dev/null || return 1
	done
}

# Stops the tunnel and the HTTP server, if running; always succeeds.
tunnel_down() {
	pkill -x openvpn 2>/dev/null || true
	pkill -f "http.server --bind 10.8.0.1" 2>/dev/null || true
	sleep 1
}

# fetch FILE DEST: downloads http://10.8.0.1:8080/FILE through the tunnel into DEST and
# prints the seconds it took.
fetch() {
	local start end
	start=$(date +%s.%N)
	in_cli wget -q -t 1 -T 30 -O "$2" "http://10.8.0.1:8080/$1" || return 1
	end=$(date +%s.%N)
	echo "$end - $start" | bc
}
