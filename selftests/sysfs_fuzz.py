#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Random writes to every writable MPUDP sysfs file, checking the write contract.

For each file: WRITES writes of random bytes (up to two pages), boundary numbers, near-valid
and valid values. After each write: a rejected write must leave the old value; an accepted
one must read back in canonical form, and must have been a valid value. Counters must never
go backwards. Prints one JSON line with the totals and the first violations; exits 1 on any.
"""
import errno
import ipaddress
import json
import os
import random
import sys

SYSFS = "/sys/kernel/mpudp"
PAGE = 4096


def read(name):
    with open(os.path.join(SYSFS, name), "rb") as f:
        return f.read()


def write(name, data):
    """Returns None on success, else the errno."""
    fd = os.open(os.path.join(SYSFS, name), os.O_WRONLY)
    try:
        os.write(fd, data)
        return None
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def canonical_number(text, limit):
    if not text or len(text) > 10 or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        return None
    return text if int(text) <= limit else None


def canonical_address(text):
    parts = text.split(".")
    if len(parts) != 4 or any(canonical_number(p, 255) is None or len(p) > 3 for p in parts):
        return None
    # Not 0/8, 127/8 (loopback), 224/4 (multicast) or 240/4 (reserved, broadcast).
    first = int(ipaddress.IPv4Address(text)) >> 24
    if first in (0, 127) or first >= 224:
        return None
    return text


def canonical_peer(text):
    """PRIMARY ALTERNATE [ALTERNATE...]: 2 to 8 addresses, one space apart."""
    if text == "":
        return ""
    words = text.split(" ")
    if not 2 <= len(words) <= 8 or any(canonical_address(w) is None for w in words):
        return None
    return text


def valid_ifname(word):
    return 0 < len(word) <= 15 and word not in (".", "..") and word.isascii() and \
        not any(c in "/:" or not c.isprintable() or c.isspace() for c in word)


def canonical_ifnames(text, existing):
    """1 to 7 interface names, one space apart; every one must exist (else ENODEV)."""
    if text == "":
        return ""
    words = text.split(" ")
    if len(words) > 7 or not all(valid_ifname(w) for w in words):
        return None
    return text if all(w in existing for w in words) else "ENODEV"


def expected(name, data, existing):
    """The canonical value a correct module stores for DATA, or None if it must reject it."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    if text.endswith("\n"):
        text = text[:-1]
    base = name.split("/")[-1]
    if base == "split":
        return canonical_number(text, 100)
    if base == "port":
        return canonical_number(text, 65535)
    if base == "peer":
        return canonical_peer(text)
    if base == "secondary":
        return canonical_ifnames(text, existing)
    if base == "scheduler":
        return text if text in ("split", "rtt", "rate") else None
    if base == "probe_interval_ms":
        value = canonical_number(text, 10000)
        return value if value is not None and int(value) >= 10 else None
    if base == "probe_down_after":
        value = canonical_number(text, 100)
        return value if value is not None and int(value) >= 1 else None
    if base in ("sequencing", "reorder", "probing"):
        return canonical_number(text, 1)
    if base == "reorder_max_ms":
        return canonical_number(text, 10000)
    if base == "reorder_max_kb":
        return canonical_number(text, 65536)
    raise ValueError(name)


def candidates(name, existing):
    """An endless mix of hostile and valid inputs for file NAME."""
    base = name.split("/")[-1]
    numbers = ["0", "1", "50", "99", "100", "101", "65535", "65536", "4294967295",
               "4294967296", "-1", "+1", "007", " 1", "1 ", "1\n\n", "0x1f", ""]
    addresses = ["10.0.1.2", "10.0.2.2", "0.0.0.0", "255.255.255.255", "224.0.0.1",
                 "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "127.0.0.1", "240.0.0.1",
                 "0.1.2.3", "223.255.255.254"]
    while True:
        kind = random.randrange(7)
        if kind == 0:
            yield os.urandom(random.randrange(0, 2 * PAGE + 1))
        elif kind == 1:
            yield bytes(random.choice(b"0123456789 .\n-abceth") for _ in range(random.randrange(0, 24)))
        elif kind == 2:
            yield (random.choice(numbers) + random.choice(["", "\n"])).encode()
        elif kind == 3:
            words = [random.choice(addresses) for _ in range(random.randrange(1, 10))]
            yield random.choice([" ".join(words), " ".join(words) + "\n", "  ".join(words),
                                 " ".join(words) + " ", ""]).encode()
        elif kind == 4:
            names = sorted(existing) + ["nosuch0", "x" * 16, "a/b", ".", "eth 1"]
            words = [random.choice(names) for _ in range(random.randrange(1, 9))]
            yield (random.choice([" ".join(words), words[0], "  ".join(words)]) +
                   random.choice(["", "\n"])).encode()
        elif kind == 5:
            yield random.choice([str(random.randrange(0, 70000)), "10.0.1.2 10.0.2.2", "eth1"]).encode()
        else:
            yield random.choice(["split", "rtt", "rtt\n", "rate", "rate\n", "RTT", "split ", "rt", "splitt", "rates"]).encode()


def main():
    writes = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    existing = set(os.listdir("/sys/class/net"))
    files = ["split", "secondary", "peer", "port", "scheduler", "probing", "probe_interval_ms",
             "probe_down_after", "sequencing", "recv/peer", "recv/port", "recv/probing",
             "recv/reorder", "recv/reorder_max_ms", "recv/reorder_max_kb"]
    counters = [f for f in os.listdir(SYSFS) if f.startswith("tx_")] + \
        ["recv/" + f for f in os.listdir(os.path.join(SYSFS, "recv")) if f.startswith("rx_")] + \
        ["recv/probes_answered", "recv/probe_drops", "recv/closings_sent", "probe_replies_ignored",
         "peer_closings"] + \
        ["recv/reorder_" + f for f in ("in_order", "held", "filled", "timeout", "overflow", "late",
                                       "resyncs", "deepest", "queue_drops", "unheld")] + \
        [f"paths/{p}/{f}" for p in ["primary", "secondary"] + [f"path{i}" for i in range(2, 8)]
         for f in ("tx_datagrams", "tx_bytes", "probes_sent", "probes_answered", "down_events",
                   "up_events")]
    last = {c: int(read(c)) for c in counters}
    problems = []
    totals = {"writes": 0, "accepted": 0, "rejected": 0}
    for name in files:
        gen = candidates(name, existing)
        for _ in range(writes):
            data = next(gen)
            before = read(name)
            err = write(name, data)
            after = read(name)
            want = expected(name, data, existing)
            totals["writes"] += 1
            if not data:
                # A zero-byte write never reaches the module: it must change nothing.
                if after != before:
                    problems.append(f"{name}: empty write changed {before!r} -> {after!r}")
                continue
            if err is None:
                totals["accepted"] += 1
                if want in (None, "ENODEV"):
                    problems.append(f"{name}: accepted invalid {data[:40]!r}")
                elif after != (want + "\n").encode():
                    problems.append(f"{name}: {data[:40]!r} reads back as {after[:40]!r}")
            else:
                totals["rejected"] += 1
                if after != before:
                    problems.append(f"{name}: rejected {data[:40]!r} but changed {before!r} -> {after!r}")
                if want not in (None, "ENODEV") and len(data) < PAGE:
                    problems.append(f"{name}: rejected valid {data[:40]!r} ({errno.errorcode.get(err)})")
        for c in counters:
            now = int(read(c))
            if now < last[c]:
                problems.append(f"{c} went backwards: {last[c]} -> {now}")
            last[c] = now
    # Probing was switched on and off at random: leave it off, and the rest as by default.
    for name in ("probing", "recv/probing"):
        write(name, b"0")
    write("sequencing", b"1")
    for name, value in (("recv/reorder", b"1"), ("recv/reorder_max_ms", b"250"),
                        ("recv/reorder_max_kb", b"2048")):
        write(name, value)
    print(json.dumps({**totals, "problems": len(problems), "first": problems[:10]}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
