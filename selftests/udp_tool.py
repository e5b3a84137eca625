#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Numbered-datagram sender and checking receiver for the MPUDP selftests.

send: sends COUNT datagrams numbered 0..COUNT-1 (or floods until killed with --count 0),
      paced to --pps (in back-to-back bursts of --burst), from an unconnected socket (as
      OpenVPN uses) or a connected one;
      --inner-udp-port wraps each number in a UDP header for a foo-over-UDP receiver.
recv: receives until COUNT distinct numbers arrived or --timeout seconds of silence, then
      prints one JSON line: received, unique, duplicates, missing, inversions (datagrams
      that arrived after a higher number had), and the source addresses seen with their
      counts. --connect makes it a connected socket, --inet6 an AF_INET6
      socket that receives IPv4 as mapped addresses, and --pktinfo adds the local addresses
      IP_PKTINFO reported ("locals"). --size N counts the datagrams that are not exactly what
      `send --size N` sends ("malformed"): N bytes, the number, then zeros.
capture: watches one interface's IPv4 UDP packets, both directions, for --seconds, then
      prints one JSON line: udp (packets seen), control (those whose payload is an MPUDP
      probe or reply: 32 bytes, magic "MU", version 2, kind 1 or 2), and the control
      packets' "SPORT>DPORT" pairs with their counts ("tuples").
"""
import argparse
import json
import socket
import struct
import sys
import time

HEADER = struct.Struct("!Q")
# Linux's IP_PKTINFO; Python's socket module has it only from 3.12 on.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
# Linux's IP_MTU_DISCOVER values: "do" never fragments (EMSGSIZE above the path MTU).
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
PMTUDISC = {"want": 1, "do": 2}


def send(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.src_port))
    if args.pmtudisc:
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC[args.pmtudisc])
    if args.connect:
        sock.connect((args.dst, args.port))
    payload = bytes(max(0, args.size - HEADER.size))
    # --inner-udp-port: each datagram's payload starts with a UDP header (to that port, no
    # checksum), as foo-over-UDP with ipproto 17 expects.
    inner = struct.Struct("!HHHH")
    gap = 1.0 / args.pps if args.pps else 0.0
    start = time.monotonic()
    n = 0
    while args.count == 0 or n < args.count:
        data = HEADER.pack(n) + payload
        if args.inner_udp_port:
            port = args.inner_udp_port
            data = inner.pack(port, port, inner.size + len(data), 0) + data
        if args.connect:
            sock.send(data)
        else:
            sock.sendto(data, (args.dst, args.port))
        n += 1
        # --burst: the pace holds on average, but datagrams leave in back-to-back bursts.
        if gap and n % args.burst == 0:
            delay = start + n * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    print(json.dumps({"sent": n}))


def recv(args):
    family = socket.AF_INET6 if args.inet6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    if args.inet6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if args.pktinfo:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    bind = args.bind
    if args.inet6:
        bind = "::" if bind == "0.0.0.0" else "::ffff:" + bind
    sock.bind((bind, args.port))
    if args.connect:
        host, port = args.connect.rsplit(":", 1)
        sock.connect(("::ffff:" + host if args.inet6 else host, int(port)))
    sock.settimeout(args.timeout)
    if args.ready:
        open(args.ready, "w").close()
    seen = {}
    sources = {}
    locals_ = {}
    received = 0
    malformed = 0
    inversions = 0
    # The first datagram that arrived after a higher number: its number, that number, and
    # how many datagrams had arrived with it.
    first_inversion = None
    highest = -1
    # The longest time between two arrivals, in ms: a stall (a failover) shows here.
    max_gap = 0.0
    last_arrival = None
    while len(seen) < args.count:
        try:
            data, ancdata, _flags, addr = sock.recvmsg(65535, 256)
        except socket.timeout:
            break
        now = time.monotonic()
        if last_arrival is not None:
            max_gap = max(max_gap, now - last_arrival)
        last_arrival = now
        received += 1
        if args.size and (len(data) != max(args.size, HEADER.size) or any(data[HEADER.size:])):
            malformed += 1
            continue
        (seq,) = HEADER.unpack_from(data)
        if seq < highest:
            inversions += 1
            if first_inversion is None:
                first_inversion = [seq, highest, received]
        highest = max(highest, seq)
        seen[seq] = seen.get(seq, 0) + 1
        sources[addr[0]] = sources.get(addr[0], 0) + 1
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                # struct in_pktinfo: ifindex, spec_dst, addr (the header's destination).
                local = socket.inet_ntoa(value[8:12])
                locals_[local] = locals_.get(local, 0) + 1
    result = {
        "received": received,
        "unique": len(seen),
        "duplicates": sum(c - 1 for c in seen.values()),
        "missing": sum(1 for i in range(args.count) if i not in seen),
        # The first few missing numbers, to tell scattered losses from a burst.
        "missing_first": [i for i in range(args.count) if i not in seen][:20],
        "inversions": inversions,
        "sources": sources,
        "max_gap_ms": round(max_gap * 1000),
    }
    if first_inversion is not None:
        result["first_inversion"] = first_inversion
    if args.pktinfo:
        result["locals"] = locals_
    if args.size:
        result["malformed"] = malformed
    print(json.dumps(result))


# Linux's ETH_P_ALL: a packet socket for it sees outgoing packets too.
ETH_P_ALL = 0x0003


def capture(args):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    sock.bind((args.dev, ETH_P_ALL))
    end = time.monotonic() + args.seconds
    udp = control = 0
    tuples = {}
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            packet, addr = sock.recvfrom(65535)
        except socket.timeout:
            break
        # addr[1] is the link-layer protocol; SOCK_DGRAM strips the link header.
        if addr[1] != 0x0800 or len(packet) < 20 or packet[9] != 17:
            continue
        ihl = (packet[0] & 0xF) * 4
        if len(packet) < ihl + 8:
            continue
        sport, dport, length = struct.unpack_from("!HHH", packet, ihl)
        udp += 1
        payload = packet[ihl + 8:ihl + length]
        if len(payload) == 32 and payload[:2] == b"MU" and payload[2] >> 4 == 2 and \
                payload[2] & 0xF in (1, 2):
            control += 1
            key = f"{sport}>{dport}"
            tuples[key] = tuples.get(key, 0) + 1
    print(json.dumps({"udp": udp, "control": control, "tuples": tuples}))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--pps", type=float, default=0.0)
    s.add_argument("--size", type=int, default=100)
    s.add_argument("--burst", type=int, default=1,
                   help="with --pps: send this many back to back, then wait for the pace")
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--src-port", type=int, default=0)
    s.add_argument("--connect", action="store_true")
    s.add_argument("--pmtudisc", choices=sorted(PMTUDISC), help="IP_MTU_DISCOVER setting")
    s.add_argument("--inner-udp-port", type=int, default=0,
                   help="prefix a UDP header to this port (foo-over-UDP payload)")
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--timeout", type=float, default=5.0)
    r.add_argument("--bind", default="0.0.0.0")
    r.add_argument("--ready", help="file to create once bound")
    r.add_argument("--connect", metavar="ADDR:PORT", help="connect to this sender")
    r.add_argument("--inet6", action="store_true", help="dual-stack AF_INET6 socket")
    r.add_argument("--pktinfo", action="store_true", help="report IP_PKTINFO's local address")
    r.add_argument("--size", type=int, default=0, help="count datagrams not as sent with --size")
    c = sub.add_parser("capture")
    c.add_argument("--dev", required=True)
    c.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    {"send": send, "recv": recv, "capture": capture}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
