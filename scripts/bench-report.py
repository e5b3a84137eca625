#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns a benchmark CSV into a Markdown table.

Goodput grids (scripts/bench-guest.sh): one row per cell (path rates and RTTs), one column
per tunnel: mean goodput in Mbit/s with the half-width of its 95 % Student-t confidence
interval, and the number of runs. A download that failed counts as a failed run and is
shown, never averaged.

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


def overhead(rows):
    configs = list(dict.fromkeys(r["config"] for r in rows))
    base = statistics.fmean(float(r["pps"]) for r in rows if r["config"] == configs[0])
    print("| configuration | datagrams/s (mean ± 95 % CI) | runs | ratio to no module |")
    print("|---|---|---|---|")
    for config in configs:
        values = [float(r["pps"]) for r in rows if r["config"] == config]
        mean, half = ci95(values)
        print(f"| {config} | {mean:,.0f} ± {half:,.0f} | {len(values)} | {mean / base:.3f} |")


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    if rows and "config" in rows[0]:
        overhead(rows)
        return
    tunnels = list(dict.fromkeys(r["tunnel"] for r in rows))
    cells = list(dict.fromkeys((r["rate0_mbit"], r["rate1_mbit"], r["rtt0_ms"], r["rtt1_ms"])
                               for r in rows))
    print("| paths (Mbit/s, RTT ms) | " + " | ".join(tunnels) + " |")
    print("|---|" + "---|" * len(tunnels))
    for cell in cells:
        r0, r1, t0, t1 = cell
        out = []
        for tunnel in tunnels:
            runs = [r for r in rows if (r["rate0_mbit"], r["rate1_mbit"], r["rtt0_ms"],
                                        r["rtt1_ms"]) == cell and r["tunnel"] == tunnel]
            ok = [float(r["goodput_mbit"]) for r in runs if r["goodput_mbit"] != "failed"]
            failed = len(runs) - len(ok)
            if not ok:
                out.append(f"failed ×{failed}" if failed else "–")
                continue
            mean, half = ci95(ok)
            share = statistics.fmean(int(r["srv_secondary_permille"]) for r in runs
                                     if r["goodput_mbit"] != "failed") / 10
            text = f"{mean:.2f} ± {half:.2f} (n={len(ok)}"
            if tunnel != "udp":
                text += f", {share:.0f} % sec."
            text += f", {failed} failed)" if failed else ")"
            out.append(text)
        print(f"| {r0}/{r1}, {t0}/{t1} | " + " | ".join(out) + " |")


if __name__ == "__main__":
    main()
