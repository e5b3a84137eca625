#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns a benchmark CSV into a Markdown table.

Goodput grids (scripts/bench-guest.sh): one row per cell (path rates, RTTs and loss), one
column per tunnel: mean goodput in Mbit/s with the half-width of its 95 % Student-t
confidence interval, the number of runs and, for multipath tunnels, the share of the
server's bytes that went over the secondary path. A download that failed counts as a failed
run and is shown, never averaged. The last column is the capacity limit after tunnel
overhead (capacity_mbit), which no tunnel can beat: of both paths, or of the primary path
alone when every tunnel in the grid is single-path.

Where the CSV has the client receiver's reorder columns (grids run since issue 13), a second
table gives, for each sequenced tunnel, their mean per download: datagrams held, released by
timeout and by the memory cap, late, the delay spread measured, and OpenVPN's replay lines.

Hook overhead (scripts/overhead-guest.sh): one row per configuration: mean datagrams per
second with its 95 % interval, and the ratio to the run without any module.
Standard library only.
"""
import csv
import math
import statistics
import sys

# Two-sided 95 % Student-t quantiles by degrees of freedom (1..30); 1.96 beyond.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def ci95(values):
    """Mean and half-width of the 95 % t confidence interval (0 for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    t = T95[len(values) - 2] if len(values) - 1 <= len(T95) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


# Bytes per full-size datagram on an emulated path (netem's rate counts the Ethernet header):
# a 1500-byte tun packet carries 1448 bytes of the inner TCP's payload (20 IP + 32 TCP with
# timestamps), and OpenVPN (cipher none, auth none, no TLS) sends it in a UDP datagram with no
# header of its own: + 8 UDP + 20 IP + 14 Ethernet.
INNER_PAYLOAD = 1448
WIRE_BYTES = 1500 + 8 + 20 + 14


# Tunnels that use only the primary path.
SINGLE_PATH_TUNNELS = ("udp", "tcp")


def single_path_of(tunnel):
    """Whether `tunnel` (maybe encrypted: a "+tls" suffix) uses only the primary path."""
    return tunnel.removesuffix("+tls") in SINGLE_PATH_TUNNELS


# The reorder columns bench-guest.sh records per download, with their table headings.
REORDER_COLUMNS = [("cli_reorder_held", "held"), ("cli_reorder_timeout", "timeout"),
                   ("cli_reorder_overflow", "overflow"), ("cli_reorder_late", "late"),
                   ("cli_delay_spread_us", "spread (ms)"), ("replay_lines", "replay lines")]


def capacity_mbit(rate0, rate1=0, rate2=0):
    """The paths' aggregate goodput limit through the tunnel, in Mbit/s (pass one rate for a
    single path)."""
    return (float(rate0) + float(rate1) + float(rate2)) * INNER_PAYLOAD / WIRE_BYTES


def cell_of(row):
    return (row["rate0_mbit"], row["rate1_mbit"], row["rtt0_ms"], row["rtt1_ms"],
            row.get("loss", "0"), row.get("extra") or "")


def third_rate(extra):
    """The third path's rate of a cell's extra (+RATE/RTT), 0 without one."""
    return float(extra[1:].split("/")[0]) if extra.startswith("+") else 0


def paths_label(cell):
    """10/10, 20/40; with a third path 10/10/5, 20/40/30; with a drop, its note after."""
    r0, r1, t0, t1, _, extra = cell
    if extra.startswith("+"):
        r2, t2 = extra[1:].split("/")
        return f"{r0}/{r1}/{r2}, {t0}/{t1}/{t2}"
    label = f"{r0}/{r1}, {t0}/{t1}"
    if extra.startswith("drop1="):
        rate, at = extra[len("drop1="):].split("@")
        label += f", path 1 to {rate} Mbit/s at {at} s"
    return label


def loss_label(loss):
    """ge0.5 -> GE 1-k=0.5 %; 1 -> 1 % uniform; 0 -> none; 0/ge1 -> none / GE 1-k=1 %."""
    if "/" in loss:
        return " / ".join(loss_label(part) for part in loss.split("/", 1))
    if loss.startswith("ge"):
        return f"GE 1-k={loss[2:]} %"
    return "none" if float(loss) == 0 else f"{loss} % uniform"


def summary(rows, cell, tunnel):
    """(mean, half-width, runs ok, runs failed, mean secondary share %) or None."""
    runs = [r for r in rows if cell_of(r) == cell and r["tunnel"] == tunnel]
    ok = [r for r in runs if r["goodput_mbit"] != "failed"]
    if not ok:
        return None if not runs else (None, None, 0, len(runs), None)
    mean, half = ci95([float(r["goodput_mbit"]) for r in ok])
    share = statistics.fmean(int(r["srv_secondary_permille"]) for r in ok) / 10
    return mean, half, len(ok), len(runs) - len(ok), share


def overhead(rows):
    """Rates per configuration, and each one's ratio to the no-module run of the same
    repetition (paired: the VM's speed drifts between repetitions far more than the hook
    costs)."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    by_rep = {}
    for r in rows:
        by_rep.setdefault(r["rep"], {})[r["config"]] = float(r["pps"])
    print("| configuration | datagrams/s (mean ± 95 % CI) | runs | "
          "paired ratio to no module (mean ± 95 % CI) |")
    print("|---|---|---|---|")
    for config in configs:
        values = [float(r["pps"]) for r in rows if r["config"] == config]
        mean, half = ci95(values)
        ratios = [rep[config] / rep[configs[0]] for rep in by_rep.values()
                  if config in rep and configs[0] in rep]
        ratio, ratio_half = ci95(ratios)
        print(f"| {config} | {mean:,.0f} ± {half:,.0f} | {len(values)} | "
              f"{ratio:.3f} ± {ratio_half:.3f} |")


def goodput(rows):
    tunnels = list(dict.fromkeys(r["tunnel"] for r in rows))
    cells = list(dict.fromkeys(cell_of(r) for r in rows))
    single_path = all(map(single_path_of, tunnels))
    print("| paths (Mbit/s, RTT ms) | loss | " + " | ".join(tunnels) +
          (" | capacity (primary path) |" if single_path else " | capacity (all paths) |"))
    print("|---|---|" + "---|" * len(tunnels) + "---|")
    for cell in cells:
        r0, r1, _, _, loss, extra = cell
        capacity = (capacity_mbit(r0) if single_path
                    else capacity_mbit(r0, r1, third_rate(extra)))
        out = []
        for tunnel in tunnels:
            result = summary(rows, cell, tunnel)
            if result is None:
                out.append("–")
                continue
            mean, half, ok, failed, share = result
            if not ok:
                out.append(f"failed ×{failed}")
                continue
            text = f"{mean:.2f} ± {half:.2f} (n={ok}"
            if not single_path_of(tunnel):
                text += f", {share:.0f} % sec."
            text += f", {failed} failed)" if failed else ")"
            out.append(text)
        print(f"| {paths_label(cell)} | {loss_label(loss)} | " + " | ".join(out) +
              f" | {capacity:.2f} |")


def reorder(rows):
    """The reorder table, for the tunnels whose receiver held anything."""
    if not rows or REORDER_COLUMNS[0][0] not in rows[0]:
        return
    ok = [r for r in rows if r["goodput_mbit"] != "failed"]
    keys = list(dict.fromkeys((cell_of(r), r["tunnel"]) for r in ok
                              if int(r["cli_reorder_held"] or 0) > 0))
    if not keys:
        return
    print()
    print("Client receiver per download (mean):")
    print()
    print("| paths (Mbit/s, RTT ms) | tunnel | " + " | ".join(h for _, h in REORDER_COLUMNS) + " |")
    print("|---|---|" + "---|" * len(REORDER_COLUMNS))
    for cell, tunnel in keys:
        runs = [r for r in ok if cell_of(r) == cell and r["tunnel"] == tunnel]
        out = []
        for column, _ in REORDER_COLUMNS:
            mean = statistics.fmean(int(r[column] or 0) for r in runs)
            out.append(f"{mean / 1000:.1f}" if column == "cli_delay_spread_us" else f"{mean:.0f}")
        print(f"| {paths_label(cell)} | {tunnel} | " + " | ".join(out) + " |")


def recovery(rows):
    """Loss recovery's cost and effect per download, for grids recorded with its counters:
    bytes the server put on the wire per byte of the file (the tunnel's overhead, repairs and
    copies included), repairs and copies sent, datagrams rebuilt, and sequence numbers the
    client's reorder buffer gave up (what the tunnelled TCP still saw lost)."""
    if not rows or "srv_fec_repairs" not in rows[0]:
        return
    ok = [r for r in rows if r["goodput_mbit"] != "failed"]
    keys = list(dict.fromkeys((cell_of(r), r["tunnel"]) for r in ok))
    if not keys:
        return
    print()
    print("Wire bytes and loss recovery per download (mean):")
    print()
    print("| paths (Mbit/s, RTT ms) | loss | tunnel | wire bytes / file bytes | repairs | copies "
          "| rebuilt | skipped |")
    print("|---|---|---|---|---|---|---|---|")
    for cell, tunnel in keys:
        runs = [r for r in ok if cell_of(r) == cell and r["tunnel"] == tunnel]

        def mean(column):
            return statistics.fmean(int(r[column] or 0) for r in runs)

        ratio = statistics.fmean(int(r["srv_wire_bytes"]) / int(r["bytes"]) for r in runs)
        print(f"| {paths_label(cell)} | {loss_label(cell[4])} | {tunnel} | {ratio:.3f} | "
              f"{mean('srv_fec_repairs'):.0f} | {mean('srv_fec_copies'):.0f} | "
              f"{mean('cli_fec_rebuilt'):.0f} | {mean('cli_reorder_skipped'):.0f} |")


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    if rows and "config" in rows[0]:
        overhead(rows)
    else:
        goodput(rows)
        reorder(rows)
        recovery(rows)


if __name__ == "__main__":
    main()
